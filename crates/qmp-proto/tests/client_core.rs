//! The client core alone, byte-level, without sockets: handshakes, reply and event routing,
//! lag, closes at each stage, and a whole session fed in at arbitrary split points.

use std::sync::Arc;

use proptest::prelude::*;
use qmp_proto::client::{
    ClientCore, CloseReason, EventQueue, Handshake, Input, Offer, Queued, Reply, Subscriber, Unplaced,
};
use qmp_proto::{ErrorClass, Event, FrameError};

const GREETING_OOB: &[u8] = b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, \"package\": \"Debian\"}, \"capabilities\": [\"oob\"]}}\r\n";
const GREETING_PLAIN: &[u8] =
    b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, \"package\": \"\"}, \"capabilities\": []}}\r\n";

/// A subscriber that queues the events whose name it wants; `gone` once "dropped".
struct Sub {
    name: Option<&'static str>,
    queue: EventQueue<Arc<Event>>,
    gone: bool,
}

impl Sub {
    fn new(name: Option<&'static str>, capacity: usize) -> Self {
        Sub { name, queue: EventQueue::new(capacity), gone: false }
    }
}

impl Subscriber for Sub {
    fn offer(&mut self, event: &Arc<Event>) -> Offer {
        if self.gone {
            return Offer::Gone;
        }
        if self.name.is_some_and(|n| n != event.name) {
            return Offer::Declined;
        }
        self.queue.push(Arc::clone(event));
        Offer::Taken
    }
}

type Core = ClientCore<u32, Sub>;

/// Every input the core makes of what it holds, as text, until it needs more bytes.
fn drain(core: &mut Core) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        match core.next_input() {
            Ok(None) => return out,
            Ok(Some(input)) => out.push(show(input)),
            Err(why) => {
                out.push(format!("closed: {why:?}"));
                return out;
            }
        }
    }
}

fn show(input: Input<'_, u32>) -> String {
    match input {
        Input::Greeting => "greeting".into(),
        Input::Ready { oob } => format!("ready oob={oob}"),
        Input::Reply { id, to, reply: Reply::Frame(bytes) } => {
            format!("frame {id} to {to}: {}", String::from_utf8_lossy(bytes))
        }
        Input::Reply { id, to, reply: Reply::Parsed(resp) } => {
            format!("parsed {id} to {to}: {:?}", resp.result.map(|r| r.get().to_owned()))
        }
        Input::Event { taken } => format!("event taken by {taken}"),
        Input::Unplaced(Unplaced::GaveUp { id }) => format!("gave up {id}"),
        Input::Unplaced(Unplaced::Foreign(resp)) => format!("foreign {:?}", resp.id),
        Input::Unplaced(other) => format!("unplaced {other:?}"),
        Input::Other => "other".into(),
        other => format!("{other:?}"),
    }
}

/// A core through QEMU's handshake (with oob when `oob`), capabilities sent with id 0.
fn ready(oob: bool) -> Core {
    let mut core = Core::new(Handshake::qmp(oob), 1 << 20);
    core.feed(GREETING_OOB);
    assert_eq!(drain(&mut core), ["greeting"]);
    let mut out = Vec::new();
    assert!(core.send_capabilities(&mut out, 0));
    core.feed(b"{\"return\": {}, \"id\": 0}\r\n");
    assert_eq!(drain(&mut core), [format!("ready oob={oob}")]);
    core
}

#[test]
fn handshake_with_oob_asks_for_it_when_offered() {
    let mut core = Core::new(Handshake::qmp(true), 1 << 20);
    assert!(!core.is_ready());
    core.feed(GREETING_OOB);
    assert_eq!(drain(&mut core), ["greeting"]);
    assert_eq!(core.greeting().unwrap().version.qemu.major, 7);
    assert!(core.wants_capabilities());
    let mut out = Vec::new();
    assert!(core.send_capabilities(&mut out, 5));
    assert_eq!(out, b"{\"execute\":\"qmp_capabilities\",\"arguments\":{\"enable\":[\"oob\"]},\"id\":5}\n");
    // A second send is refused: the step was taken.
    assert!(!core.send_capabilities(&mut out, 6));
    core.feed(b"{\"return\": {}, \"id\": 5}\r\n");
    assert_eq!(drain(&mut core), ["ready oob=true"]);
    assert!(core.is_ready() && core.oob());
}

#[test]
fn handshake_without_oob_when_not_wanted_or_not_offered() {
    for (want, greeting) in [(false, GREETING_OOB), (true, GREETING_PLAIN)] {
        let mut core = Core::new(Handshake::qmp(want), 1 << 20);
        core.feed(greeting);
        assert_eq!(drain(&mut core), ["greeting"]);
        let mut out = Vec::new();
        core.send_capabilities(&mut out, 1);
        assert_eq!(out, b"{\"execute\":\"qmp_capabilities\",\"id\":1}\n");
        core.feed(b"{\"return\": {}, \"id\": 1}");
        assert_eq!(drain(&mut core), ["ready oob=false"]);
        assert!(!core.oob());
    }
}

#[test]
fn the_guest_agent_has_no_handshake() {
    let mut core = Core::new(Handshake::none(), 1 << 20);
    assert!(core.is_ready() && !core.wants_capabilities());
    core.register(1, 10).unwrap();
    core.feed(b"{\"return\": 1, \"id\": 1}\n");
    assert_eq!(drain(&mut core), ["frame 1 to 10: {\"return\": 1, \"id\": 1}"]);
}

#[test]
fn a_greeting_without_negotiation_is_the_whole_handshake() {
    let mut core = Core::new(Handshake::new(true, false, true), 1 << 20);
    core.feed(GREETING_OOB);
    assert_eq!(drain(&mut core), ["ready oob=false"]);
    // Negotiation without a greeting: capabilities at once, no oob asked for.
    let mut core = Core::new(Handshake::new(false, true, true), 1 << 20);
    assert!(core.wants_capabilities());
    let mut out = Vec::new();
    core.send_capabilities(&mut out, 1);
    assert_eq!(out, b"{\"execute\":\"qmp_capabilities\",\"id\":1}\n");
}

#[test]
fn a_greeting_not_waited_for_is_kept_and_changes_nothing() {
    let mut core = Core::new(Handshake::none(), 1 << 20);
    core.feed(GREETING_OOB);
    assert_eq!(drain(&mut core), ["other"]);
    assert!(core.is_ready() && !core.oob() && !core.wants_capabilities());
    assert_eq!(core.greeting().unwrap().version.qemu.micro, 22);
    // A second one does not replace it.
    core.feed(GREETING_PLAIN);
    assert_eq!(drain(&mut core), ["other"]);
    assert_eq!(core.greeting().unwrap().version.qemu.micro, 22);
}

#[test]
fn a_refused_negotiation_closes_with_the_servers_error() {
    let mut core = Core::new(Handshake::qmp(true), 1 << 20);
    core.feed(GREETING_OOB);
    drain(&mut core);
    core.send_capabilities(&mut Vec::new(), 1);
    core.feed(b"{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"no\"}, \"id\": 1}\r\n");
    let Err(CloseReason::NegotiationRefused(e)) = core.next_input() else { panic!() };
    assert_eq!(e.class, ErrorClass::CommandNotFound);
    // The reason sticks.
    assert!(matches!(core.next_input(), Err(CloseReason::NegotiationRefused(_))));
    assert!(core.register(2, 0).is_err());
}

#[test]
fn replies_go_to_the_call_that_sent_their_id() {
    let mut core = ready(true);
    core.register(1, 100).unwrap();
    core.register(2, 200).unwrap();
    core.register(3, 300).unwrap();
    assert_eq!(core.pending(), 3);
    // Out of order, in QEMU's shape (frames) and another (parsed), an error reply too.
    core.feed(b"{\"return\": {}, \"id\": 2}\r\n{\"id\": 1, \"return\": 7}\r\n");
    core.feed(b"{\"error\": {\"class\": \"GenericError\", \"desc\": \"x\"}, \"id\": 3}\r\n");
    assert_eq!(
        drain(&mut core),
        [
            "frame 2 to 200: {\"return\": {}, \"id\": 2}",
            "parsed 1 to 100: Ok(\"7\")",
            "frame 3 to 300: {\"error\": {\"class\": \"GenericError\", \"desc\": \"x\"}, \"id\": 3}",
        ]
    );
    assert_eq!(core.pending(), 0);
}

#[test]
fn a_parsed_error_reply_keeps_the_class() {
    let mut core = ready(false);
    core.register(4, 1).unwrap();
    core.feed(b"{\"id\": 4, \"error\": {\"class\": \"DeviceNotFound\", \"desc\": \"Device 'x' not found\"}}");
    let Ok(Some(Input::Reply { reply: Reply::Parsed(resp), .. })) = core.next_input() else { panic!() };
    let err = resp.result.unwrap_err();
    assert_eq!(err.class, ErrorClass::DeviceNotFound);
    assert_eq!(err.desc, "Device 'x' not found");
}

#[test]
fn replies_for_no_pending_call_are_unplaced() {
    let mut core = ready(false);
    core.register(1, 1).unwrap();
    // A call that gave up: forgotten, its late reply (either shape) placed nowhere.
    core.register(9, 9).unwrap();
    assert_eq!(core.forget(9), Some(9));
    core.feed(b"{\"return\": {}, \"id\": 9}{\"id\": 9, \"return\": {}}");
    // Unknown ids, non-integer ids, and none: never another call's answer.
    for id in ["1.0", "\"1\"", "null", "-1", "1.5", "[1]", "{}"] {
        core.feed(format!("{{\"return\": {{}}, \"id\": {id}}}").as_bytes());
    }
    core.feed(b"{\"return\": {}, \"id\": 12345}{\"return\": {}}");
    core.feed(b"{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error\"}}");
    let got = drain(&mut core);
    assert_eq!(got[..2], ["gave up 9", "gave up 9"]);
    assert_eq!(got[2], "foreign Some(Number(1.0))");
    assert_eq!(got[3], "foreign Some(String(\"1\"))");
    assert_eq!(got[4], "foreign Some(Null)");
    assert!(got[5..9].iter().all(|g| g.starts_with("foreign Some")), "{got:?}");
    assert_eq!(got[9..], ["gave up 12345", "foreign None", "foreign None"]);
    // The pending call was untouched.
    assert!(core.is_pending(1));
}

#[test]
fn events_reach_each_subscriber_that_wants_them_and_gone_ones_are_forgotten() {
    let mut core = ready(false);
    core.subscribe(Sub::new(None, 8));
    core.subscribe(Sub::new(Some("STOP"), 8));
    core.subscribe(Sub::new(Some("STOP"), 8));
    core.subscribers_mut()[2].gone = true;
    core.feed(b"{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"STOP\"}\r\n");
    core.feed(b"{\"event\": \"RESUME\", \"timestamp\": {\"seconds\": 1, \"microseconds\": 3}}\r\n");
    assert_eq!(drain(&mut core), ["event taken by 2", "event taken by 1"]);
    assert_eq!(core.subscribers().len(), 2);
    assert_eq!(core.subscribers()[0].queue.len(), 2);
    assert_eq!(core.subscribers()[1].queue.len(), 1);
    // Events before the handshake ends are delivered too.
    let mut early = Core::new(Handshake::qmp(false), 1 << 20);
    early.subscribe(Sub::new(None, 1));
    early.feed(b"{\"event\": \"X\", \"timestamp\": {\"seconds\": 0, \"microseconds\": 0}}");
    assert_eq!(drain(&mut early), ["event taken by 1"]);
}

#[test]
fn a_full_queue_drops_the_oldest_and_counts_them() {
    let mut core = ready(false);
    core.subscribe(Sub::new(None, 2));
    for n in 0..5 {
        core.feed(
            format!("{{\"event\": \"E{n}\", \"timestamp\": {{\"seconds\": 0, \"microseconds\": 0}}}}")
                .as_bytes(),
        );
    }
    assert_eq!(drain(&mut core).len(), 5);
    let q = &mut core.subscribers_mut()[0].queue;
    assert_eq!(q.pop(), Some(Queued::Lagged(3)));
    let names: Vec<_> = std::iter::from_fn(|| match q.pop() {
        Some(Queued::Event(e)) => Some(e.name.clone()),
        _ => None,
    })
    .collect();
    assert_eq!(names, ["E3", "E4"]);
    assert!(!q.has_next());
}

#[test]
fn closes_before_the_greeting() {
    let mut core = Core::new(Handshake::qmp(true), 1 << 20);
    assert_eq!(drain(&mut core), Vec::<String>::new());
    assert_eq!(core.peer_closed(), &CloseReason::NoGreeting);
    // Half a greeting is a message cut short.
    let mut core = Core::new(Handshake::qmp(true), 1 << 20);
    core.feed(&GREETING_OOB[..20]);
    drain(&mut core);
    assert_eq!(core.peer_closed(), &CloseReason::ClosedMidMessage);
}

#[test]
fn closes_mid_negotiation_end_the_handshake() {
    let mut core = Core::new(Handshake::qmp(true), 1 << 20);
    core.feed(GREETING_OOB);
    drain(&mut core);
    core.send_capabilities(&mut Vec::new(), 1);
    assert_eq!(core.peer_closed(), &CloseReason::PeerClosed);
    assert!(core.handshake().is_none() && !core.is_ready());
    assert_eq!(drain(&mut core), ["closed: PeerClosed"]);
}

#[test]
fn closes_mid_message_and_with_calls_pending() {
    let mut core = ready(false);
    core.register(1, 10).unwrap();
    core.register(2, 20).unwrap();
    core.feed(b"{\"return\": {\"status\": ");
    assert_eq!(drain(&mut core), Vec::<String>::new());
    assert_eq!(core.peer_closed(), &CloseReason::ClosedMidMessage);
    // The first reason stands.
    assert_eq!(core.close(CloseReason::ClientDropped), &CloseReason::ClosedMidMessage);
    let mut calls: Vec<_> = core.drain_calls().collect();
    calls.sort();
    assert_eq!(calls, [(1, 10), (2, 20)]);
    let (to, why) = core.register(3, 30).unwrap_err();
    assert_eq!((to, why), (30, &CloseReason::ClosedMidMessage));
}

#[test]
fn closes_after_ready_between_messages() {
    let mut core = ready(true);
    core.register(1, 10).unwrap();
    assert_eq!(core.peer_closed(), &CloseReason::PeerClosed);
    assert_eq!(core.drain_calls().count(), 1);
}

#[test]
fn faults_in_the_input_close_with_what_they_were() {
    let mut core: Core = Core::new(Handshake::none(), 64);
    core.feed(&[b'{'; 1][..]);
    core.feed(&[b' '; 100]);
    assert_eq!(drain(&mut core), ["closed: TooLarge { limit: 64 }"]);
    let mut core = ready(false);
    core.feed(b"{\"return\": {}, \"id\": 1,}");
    let got = drain(&mut core);
    assert!(got[0].starts_with("closed: Undecodable"), "{got:?}");
    let mut core = ready(false);
    core.feed(b"\x01");
    assert!(matches!(core.next_input(), Err(CloseReason::BadFrame(FrameError::Stray { byte: 1, .. }))));
}

#[test]
fn the_guest_agent_core_skips_stray_bytes_and_garbage() {
    // What a channel may hold: an earlier client's garbage, the agent's 0xFF before a
    // delimited sync reply, a value that is no message; then the replies.
    let mut core = Core::new(Handshake::none(), 1 << 20);
    core.register(1, 10).unwrap();
    core.register(2, 20).unwrap();
    core.feed(b"\x01garbage {\"return\": {}, \"id\": 1,}\xff{\"return\": 42, \"id\": 1}\n7\n");
    core.feed(b"\xff{\"error\": {\"class\": \"GenericError\", \"desc\": \"x\"}, \"id\": 2}");
    assert_eq!(
        drain(&mut core),
        [
            "other", // `garbage`
            "other", // a malformed object: not a reply, and not fatal here
            "frame 1 to 10: {\"return\": 42, \"id\": 1}",
            "other", // `7`
            "frame 2 to 20: {\"error\": {\"class\": \"GenericError\", \"desc\": \"x\"}, \"id\": 2}",
        ]
    );
    assert!(core.close_reason().is_none());
}

#[test]
fn a_lent_buffer_holds_input_back_until_restored() {
    let mut core = ready(false);
    core.register(1, 1).unwrap();
    let mut buf = core.lend_buffer(64);
    assert!(buf.capacity() >= 64);
    buf.extend_from_slice(b"{\"return\": {}, \"id\": 1}");
    assert!(matches!(core.next_input(), Ok(None)));
    core.restore_buffer(buf);
    assert_eq!(drain(&mut core), ["frame 1 to 1: {\"return\": {}, \"id\": 1}"]);
}

/// A whole session as the server writes it: greeting, capabilities' reply, replies in both
/// shapes (one for a call that gave up, one foreign), events, and a partial reply at the end.
fn session() -> Vec<u8> {
    let mut s = GREETING_OOB.to_vec();
    s.extend_from_slice(b"{\"return\": {}, \"id\": 0}\r\n");
    s.extend_from_slice(b"{\"timestamp\": {\"seconds\": 1, \"microseconds\": 0}, \"event\": \"STOP\"}\r\n");
    s.extend_from_slice(b"{\"return\": {\"status\": \"paused\", \"running\": false}, \"id\": 1}\r\n");
    s.extend_from_slice(b"{\"id\": 2, \"return\": [1, \"}\", {\"a\": \"\\\"\"}]}\r\n");
    s.extend_from_slice(b"{\"return\": {}, \"id\": 3}\r\n");
    s.extend_from_slice(b"{\"return\": {}, \"id\": \"4\"}\r\n");
    s.extend_from_slice(b"{\"event\": \"RESUME\", \"timestamp\": {\"seconds\": 2, \"microseconds\": 5}}\r\n");
    s.extend_from_slice(b"{\"error\": {\"class\": \"GenericError\", \"desc\": \"it broke\"}, \"id\": 4}\r\n");
    s.extend_from_slice(b"{\"return\": {\"status\":");
    s
}

/// Drives the session through a core, fed `input` in pieces cut at `cuts`; what it came to.
fn run_session(input: &[u8], cuts: &[usize]) -> (Vec<String>, CloseReason) {
    let mut core = Core::new(Handshake::qmp(true), 1 << 20);
    core.subscribe(Sub::new(None, 8));
    for id in [1, 2, 3, 4] {
        core.register(id, id as u32 * 10).unwrap();
    }
    core.forget(3);
    let mut got = Vec::new();
    let mut at = 0;
    for &cut in cuts.iter().chain([&input.len()]) {
        // Half the pieces go through the lent buffer, as the blocking driver reads.
        if cut % 2 == 0 {
            core.feed(&input[at..cut]);
        } else {
            let mut buf = core.lend_buffer(cut - at);
            buf.extend_from_slice(&input[at..cut]);
            core.restore_buffer(buf);
        }
        at = cut;
        loop {
            match core.next_input() {
                Ok(Some(Input::Greeting)) => {
                    got.push("greeting".to_owned());
                    assert!(core.send_capabilities(&mut Vec::new(), 0));
                }
                Ok(Some(input)) => got.push(show(input)),
                Ok(None) => break,
                Err(why) => panic!("closed: {why}"),
            }
        }
    }
    let why = core.peer_closed().clone();
    assert_eq!(core.drain_calls().count(), 0);
    assert_eq!(core.subscribers()[0].queue.len(), 2);
    (got, why)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn a_session_split_anywhere_comes_to_the_same(mut cuts in prop::collection::vec(0usize..1000, 0..40)) {
        let input = session();
        let whole = run_session(&input, &[]);
        for c in &mut cuts {
            *c %= input.len() + 1;
        }
        cuts.sort_unstable();
        prop_assert_eq!(run_session(&input, &cuts), whole);
    }
}

#[test]
fn the_session_comes_to_what_was_sent() {
    let (got, why) = run_session(&session(), &[]);
    assert_eq!(
        got,
        [
            "greeting",
            "ready oob=true",
            "event taken by 1",
            "frame 1 to 10: {\"return\": {\"status\": \"paused\", \"running\": false}, \"id\": 1}",
            "parsed 2 to 20: Ok(\"[1, \\\"}\\\", {\\\"a\\\": \\\"\\\\\\\"\\\"}]\")",
            "gave up 3",
            "foreign Some(String(\"4\"))",
            "event taken by 1",
            "frame 4 to 40: {\"error\": {\"class\": \"GenericError\", \"desc\": \"it broke\"}, \"id\": 4}",
        ]
    );
    assert_eq!(why, CloseReason::ClosedMidMessage);
}
