//! The same raw transcripts, valid and invalid, sent to real QEMU 7.2 (started here) and to
//! the simulator; replies and events must match byte for byte after masking timestamps,
//! version strings and job progress. Real QEMU missing is a failure, not a skip.

mod common;

use common::{compare, normalize, s, s_settle, s_until, Peer};

fn steps(raw: &[&[u8]]) -> Vec<common::Step> {
    raw.iter().map(s).collect()
}

const NEGOTIATE: &[u8] = b"{\"execute\": \"qmp_capabilities\"}";

#[test]
fn before_negotiation() {
    let (qemu, sim) = (Peer::qemu_system(), Peer::sim());
    compare(
        &qemu,
        &sim,
        &steps(&[
            b"{\"execute\":\"query-status\"}",
            b"{\"execute\":\"query-status\",\"id\":1}",
            b"{\"execute\":\"nope\",\"id\":\"x\"}",
            b"{\"exec-oob\":\"query-status\",\"id\":5}",
            b"{\"execute\":1,\"id\":5}",
            b"[1,2]",
            b"not json\n",
            b"\xff",
            b"{\"execute\":\"qmp_capabilities\",\"arguments\":{\"enable\":[\"foo\"]}}",
            b"{\"execute\":\"qmp_capabilities\",\"arguments\":{\"enable\":\"oob\"}}",
            b"{\"execute\":\"qmp_capabilities\",\"arguments\":{\"enable\":[1]}}",
            b"{\"execute\":\"qmp_capabilities\",\"arguments\":{\"x\":[1]}}",
            b"{\"execute\":\"qmp_capabilities\",\"arguments\":[]}",
            b"{'execute':'qmp_capabilities','id':{'a':[1,2.5,'\\u00e9']}}",
            b"{\"execute\":\"qmp_capabilities\"}",
        ]),
    );
}

#[test]
fn malformed_input_after_negotiation() {
    let (qemu, sim) = (Peer::qemu_system(), Peer::sim());
    compare(
        &qemu,
        &sim,
        &steps(&[
            NEGOTIATE,
            b"not json\n",
            b"XYZ abc\n",
            b"abc XYZ{\"execute\":\"query-status\"}",
            b"{\"execute\": X}",
            b"{\"execute\": \"a\\qb\"}",
            b"{\"execute\": \"a\\u00\"}",
            b"{\"execute\": \"\\ud800x\"}",
            b"{\"execute\": 01}",
            b"{\"execute\": -}\n",
            b"{\"execute\": 1.}\n",
            b"{\"execute\": 1.5e}\n",
            b"{\"execute\": tru}",
            b"[[[]]]",
            b"{\"a\":1,}",
            b"{,}",
            b"[1,]",
            b"[1 2]",
            b"{\"a\" 1}",
            b"{\"a\":}",
            b"{1:2}",
            b"{\"a\":1 \"b\":2}",
            b"{\"a\":1}}",
            b"}",
            b"]",
            b":",
            b"\"abc\"",
            b"1 ",
            b"true ",
            b"%d",
            b"{\"execute\": \"\\u0000\"}",
            b"{\"execute\": \"\xc3\x28\"}",
            b"{\"execute\": \"\xc3\xa9\"}",
            b"{\"execute\":\"query-status\"\x01}",
            b"\xff\xff\x01{\"execute\":\"x\"}",
            b"{\"execute\": \xff XYZ abc\n",
            b"{\"execute\":\"query-status\",\"id\":1,\"id\":2}",
            b"{\"execute\":\"query-status\",\"arguments\":{\"x\":1}}",
            b"{\"execute\":\"query-status\",\"arguments\":[]}",
            b"{\"execute\":\"query-status\",\"foo\":1,\"id\":1}",
            b"{\"exec-oob\":\"x\",\"execute\":\"query-status\",\"id\":6}",
            b"{\"exec-oob\":\"query-status\",\"id\":6}",
            b"{\"id\":7}",
            b"{}",
            b"{\"execute\":\"nope\",\"id\":[1,{\"b\":null}]}",
            b"{\"execute\":\"qmp_capabilities\"}",
            b"{\"execute\":\"qmp_capabilities\",\"arguments\":{\"x\":1}}",
            b"{\"execute\":\"query-status\",\"id\":null}",
            b"{\"execute\":\"query-status\",\"arguments\":null,\"id\":1}",
            b"{\"execute\":\"\",\"id\":2}",
            b"{\"execute\":\"a\tb\"}\n",
            b"{\"execute\":\"a\nb\"}\n",
            b"{\"execute\":\"query-status\",\"arguments\":{},\"id\":3}",
            b"{\"arguments\":{},\"execute\":\"query-status\",\"id\":4,\"zzz\":5}",
            b"{\"execute\":\"query-status\" , \"id\" : 5 }",
            b"[{\"execute\":\"query-status\"}]",
            b"{\"execute\":[\"query-status\"]}",
            b"{\"execute\":\"query-status\",\"arguments\":{\"a\":1,\"b\":2}}",
        ]),
    );
}

#[test]
fn ids_and_quirks() {
    let (qemu, sim) = (Peer::qemu_system(), Peer::sim());
    compare(
        &qemu,
        &sim,
        &steps(&[
            NEGOTIATE,
            b"{'execute':'query-status'}{\"execute\":\"query-status\",\"id\":\"two\"}",
            b"{\"execute\":\"query-status\",\"id\":0.1}",
            b"{\"execute\":\"query-status\",\"id\":[1.0,-0.0,1e-7,123456789.123,2.5e-300,-1.5E+10,0.000123]}",
            b"{\"execute\":\"query-status\",\"id\":1e300}",
            b"{\"execute\":\"query-status\",\"id\":18446744073709551615}",
            b"{\"execute\":\"query-status\",\"id\":-9223372036854775808}",
            b"{\"execute\":\"query-status\",\"id\":123456789012345678901234567890}",
            b"{\"execute\":\"query-status\",\"id\":\"\\ud83d\\ude00 \\u0001 / \\\\ \\\" \\t\"}",
            b"{\"execute\":\"query-status\",\"id\":{\"z\":1,\"a\":[true,false,null],\"id\":{}}}",
            b"{\"execute\":\n\"query-status\"\r\n,\t\"id\" : 3}",
            b"{\"execute\":\"query-status\",\"id\":\"it's\"}{'execute':'query-status','id':'a\"b\\'c'}",
        ]),
    );
}

#[test]
fn run_states_and_events() {
    let (qemu, sim) = (Peer::qemu_system(), Peer::sim());
    compare(
        &qemu,
        &sim,
        &steps(&[
            NEGOTIATE,
            b"{\"execute\":\"query-status\"}",
            b"{\"execute\":\"cont\"}",
            b"{\"execute\":\"stop\"}",
            b"{\"execute\":\"query-status\"}",
            b"{\"execute\":\"stop\"}",
            b"{\"execute\":\"human-monitor-command\",\"arguments\":{\"command-line\":\"info status\"}}",
            b"{\"execute\":\"cont\",\"id\":1}",
            b"{\"execute\":\"system_reset\"}",
            b"{\"execute\":\"system_powerdown\"}",
            b"{\"execute\":\"human-monitor-command\",\"arguments\":{\"command-line\":\"info status\"}}",
            b"{\"execute\":\"human-monitor-command\",\"arguments\":{\"command-line\":\"bogus\"}}",
            b"{\"execute\":\"human-monitor-command\",\"arguments\":{}}",
            b"{\"execute\":\"human-monitor-command\",\"arguments\":{\"command-line\":\"info foo\"}}",
            b"{\"execute\":\"human-monitor-command\",\"arguments\":{\"command-line\":\"\"}}",
            b"{\"execute\":\"human-monitor-command\",\"arguments\":{\"command-line\":\"stop\"}}",
            b"{\"execute\":\"human-monitor-command\",\"arguments\":{\"command-line\":\"  info   status  \"}}",
            b"{\"execute\":\"human-monitor-command\",\"arguments\":{\"command-line\":\"cont\"}}",
            b"{\"execute\":\"query-name\"}",
            b"{\"execute\":\"query-migrate\"}",
            b"{\"execute\":\"query-block-jobs\"}",
            b"{\"execute\":\"query-jobs\"}",
            b"{\"execute\":\"device_del\",\"arguments\":{\"id\":\"nodev\"}}",
            b"{\"execute\":\"device_del\",\"arguments\":{}}",
            b"{\"execute\":\"device_del\",\"arguments\":{\"id\":5}}",
            b"{\"execute\":\"device_add\",\"arguments\":{\"driver\":\"nope\",\"id\":\"d1\"}}",
            b"{\"execute\":\"device_add\",\"arguments\":{\"id\":\"d1\"}}",
            // QemuOpts turns scalars into text and drops the rest.
            b"{\"execute\":\"device_add\",\"arguments\":{\"driver\":true}}",
            b"{\"execute\":\"device_add\",\"arguments\":{\"driver\":-3}}",
            b"{\"execute\":\"device_add\",\"arguments\":{\"driver\":18446744073709551615}}",
            b"{\"execute\":\"device_add\",\"arguments\":{\"driver\":0.1}}",
            b"{\"execute\":\"device_add\",\"arguments\":{\"driver\":1e300}}",
            b"{\"execute\":\"device_add\",\"arguments\":{\"driver\":1.5e-7}}",
            b"{\"execute\":\"device_add\",\"arguments\":{\"driver\":{}}}",
            b"{\"execute\":\"device_add\",\"arguments\":{\"driver\":null}}",
            b"{\"execute\":\"migrate\",\"arguments\":{}}",
            b"{\"execute\":\"block-job-cancel\",\"arguments\":{\"device\":\"x\"}}",
            b"{\"execute\":\"block-job-pause\",\"arguments\":{\"device\":\"x\"}}",
            b"{\"execute\":\"block-job-set-speed\",\"arguments\":{\"device\":\"x\",\"speed\":\"fast\"}}",
            b"{\"execute\":\"blockdev-add\",\"arguments\":{\"driver\":\"nope\",\"node-name\":\"a\"}}",
            b"{\"execute\":\"blockdev-add\",\"arguments\":{\"node-name\":\"a\"}}",
            b"{\"execute\":\"blockdev-add\",\"arguments\":{\"driver\":\"file\",\"node-name\":\"a\"}}",
            b"{\"execute\":\"blockdev-add\",\"arguments\":{\"driver\":\"file\",\"node-name\":\"a\",\"filename\":\"/nonexistent/x\"}}",
            b"{\"execute\":\"blockdev-del\",\"arguments\":{\"node-name\":\"nope\"}}",
            b"{\"execute\":\"no-such-command\",\"arguments\":{\"x\":1}}",
            b"{\"execute\":\"query-status\",\"arguments\":{\"x\":1,\"y\":2,\"z\":3}}",
            b"{\"execute\":\"query-status\",\"arguments\":{\"foo\":1,\"bar\":2}}",
            b"{\"execute\":\"query-status\",\"arguments\":{\"zz\":1,\"a\":1,\"m\":2,\"q\":3}}",
            b"{\"execute\":\"query-status\",\"arguments\":{\"alpha\":1,\"beta\":2,\"gamma\":3,\"delta\":4,\"epsilon\":5,\"zeta\":6,\"eta\":7}}",
            b"{\"execute\":\"query-status\",\"arguments\":{\"b\":1,\"a\":2}}",
            b"{\"execute\":\"device_del\",\"arguments\":{\"id\":\"x\",\"a\":1,\"b\":2}}",
            b"{\"execute\":\"device_del\",\"arguments\":{\"id\":\"x\",\"device\":1,\"driver\":2,\"path\":3}}",
            b"{\"execute\":\"migrate-set-capabilities\",\"arguments\":{\"capabilities\":[{\"capability\":\"xbzrle\",\"state\":true,\"p\":1,\"q\":2}]}}",
        ]),
    );
}

#[test]
fn oob_negotiated() {
    let (qemu, sim) = (Peer::qemu_system(), Peer::sim());
    compare(
        &qemu,
        &sim,
        &steps(&[
            b"{\"execute\":\"qmp_capabilities\",\"arguments\":{\"enable\":[\"oob\",\"oob\"]}}",
            b"{\"exec-oob\":\"query-status\",\"id\":6}",
            b"{\"exec-oob\":\"nope\",\"id\":7}",
            b"{\"exec-oob\":5,\"id\":8}",
            b"{\"exec-oob\":\"x\",\"execute\":\"query-status\",\"id\":9}",
            b"{\"execute\":\"query-status\",\"id\":10}",
            b"{\"exec-oob\":\"query-yank\",\"id\":1}",
            b"{\"exec-oob\":\"yank\",\"arguments\":{\"instances\":[]},\"id\":2}",
            b"{\"exec-oob\":\"yank\",\"arguments\":{\"instances\":[{\"type\":\"chardev\",\"id\":\"nope\"}]},\"id\":3}",
            b"{\"exec-oob\":\"yank\",\"arguments\":{\"instances\":[{\"type\":\"bogus\"}]}}",
            b"{\"exec-oob\":\"yank\",\"arguments\":{\"instances\":[{\"type\":\"block-node\"}]}}",
            b"{\"exec-oob\":\"migrate-pause\",\"id\":4}",
            b"{\"execute\":\"query-yank\",\"id\":5}",
            b"{\"exec-oob\":\"yank\",\"id\":6}",
            b"{\"exec-oob\":\"query-yank\",\"arguments\":{\"x\":1},\"id\":7}",
        ]),
    );
}

#[test]
fn quit_sends_shutdown_then_reply_then_closes() {
    for peer in [Peer::qemu_system(), Peer::sim()] {
        let mut c = peer.connect();
        c.greeting();
        assert_eq!(c.step(NEGOTIATE, 0), vec!["{\"return\": {}}\r\n".to_string()]);
        c.send(b"{\"execute\":\"quit\"}");
        let lines = c.read_until(std::time::Duration::from_secs(10), |l| l.iter().any(|x| x == "<EOF>"));
        let lines: Vec<String> = lines.iter().map(|l| normalize(l)).collect();
        assert_eq!(
            lines,
            [
                "{\"timestamp\": {\"seconds\": 0, \"microseconds\": 0}, \"event\": \"SHUTDOWN\", \"data\": {\"guest\": false, \"reason\": \"host-qmp-quit\"}}\r\n",
                "{\"return\": {}}\r\n",
                "<EOF>"
            ]
        );
    }
}

#[test]
fn migration_events_and_capabilities() {
    let (qemu, sim) = (Peer::qemu_system(), Peer::sim());
    let mut steps = steps(&[
        NEGOTIATE,
        b"{\"execute\":\"query-migrate\"}",
        b"{\"execute\":\"migrate-set-capabilities\",\"arguments\":{\"capabilities\":[{\"capability\":\"events\",\"state\":true}]}}",
        b"{\"execute\":\"migrate-set-capabilities\",\"arguments\":{\"capabilities\":[{\"capability\":\"nope\",\"state\":true}]}}",
        b"{\"execute\":\"migrate-set-capabilities\",\"arguments\":{\"capabilities\":[{\"capability\":\"xbzrle\"}]}}",
        b"{\"execute\":\"migrate-set-capabilities\",\"arguments\":{}}",
        b"{\"execute\":\"query-migrate-capabilities\"}",
        b"{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"bogus:x\"}}",
    ]);
    steps.push(s_until(
        b"{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"exec:cat > /dev/null\"}}",
        "\"completed\"",
    ));
    steps.push(s_settle(b"{\"execute\":\"query-status\"}", "postmigrate"));
    steps.push(s(b"{\"execute\":\"migrate_cancel\"}"));
    compare(&qemu, &sim, &steps);
}

/// Three clients, one per monitor: two negotiated, one not. Events reach the negotiated ones
/// only.
#[test]
fn events_reach_every_negotiated_client_and_no_other() {
    let run = |peer: &Peer| -> Vec<Vec<String>> {
        let mut c: Vec<common::Raw> = (0..3).map(|i| peer.monitor(i)).collect();
        for x in c.iter_mut() {
            x.greeting();
        }
        c[0].step(NEGOTIATE, 0);
        c[1].step(NEGOTIATE, 0);
        let mut out = vec![c[0].step(b"{\"execute\":\"stop\"}", 1)];
        out.push(c[1].step(b"{\"execute\":\"cont\",\"id\":\"b\"}", 1));
        out.push(c[0].step(b"", 2));
        // The third client only now negotiates: it saw no event before, and sees none now.
        out.push(c[2].step(NEGOTIATE, 0));
        out.push(c[2].step(b"{\"execute\":\"query-status\"}", 1));
        out.push(c[1].step(b"", 2));
        out.into_iter().map(|lines| lines.iter().map(|l| normalize(l)).collect()).collect()
    };
    let want = run(&Peer::qemu_system_monitors(3));
    let got = run(&Peer::sim());
    assert_eq!(want, got);
    assert!(want[0][0].contains("\"STOP\""), "{want:?}");
    assert!(want[1][0].contains("\"STOP\"") && want[1][1].contains("\"RESUME\""), "{want:?}");
    assert!(want[2][0].contains("\"RESUME\""), "{want:?}");
    assert!(want[3].iter().chain(&want[4]).all(|l| !l.contains("\"event\"")), "{want:?}");
}

/// The human monitor's QOM commands and `info kvm`, printed as QEMU prints them: lists as
/// `name (type)` lines, values as JSON, errors as `Error: …`, a missing word as QEMU's
/// usage lines.
#[test]
fn hmp_qom_commands_print_as_qemu_does() {
    let hmp = |line: &str| {
        format!("{{\"execute\": \"human-monitor-command\", \"arguments\": {{\"command-line\": \"{line}\"}}}}")
    };
    let mut all = vec![common::s(NEGOTIATE)];
    for line in [
        "qom-list",
        "qom-list /",
        "qom-list /nope",
        "qom-list /machine",
        "qom-list /machine/unattached",
        "qom-get /machine type",
        "qom-get /machine nope",
        "qom-get /nope type",
        "qom-get /machine",
        "qom-get",
        "qom-get /machine usb",
        "qom-get /machine kernel",
        "qom-get /objects type",
    ] {
        all.push(common::s(hmp(line)));
    }
    all.push(common::s(b"{\"execute\": \"object-add\", \"arguments\": {\"qom-type\": \"iothread\", \"id\": \"io1\", \"poll-max-ns\": 5}}"));
    for line in [
        "qom-get /objects/io1 poll-max-ns",
        "qom-list /objects/io1",
        "object_del io1",
        "object_del io1",
        "object_del",
        "info kvm",
    ] {
        all.push(common::s(hmp(line)));
    }
    compare(&Peer::qemu_system(), &Peer::sim(), &all);
}
