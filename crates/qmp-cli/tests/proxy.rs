//! `qmp proxy` in front of a real QEMU: many clients of every kind at once, each with its own
//! negotiation and ids; pipelining; events; slow and vanishing clients; policy.

mod proxy_support;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use proxy_support::{proxy, Peer, Raw};

#[test]
fn clients_of_every_kind_at_once_through_one_proxy() {
    let started = Instant::now();
    let peer = Peer::qemu(1);
    let sock = peer.dir().join("proxy.sock");
    let _proxy = proxy(&peer, &["--listen", sock.to_str().unwrap()], &[&sock]);
    assert_eq!(std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777, 0o600);

    // Three kinds of client connected at once.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let ours = rt.block_on(qmp::Client::connect(sock.as_path())).unwrap();
    let mut raw = Raw::connect(&sock);
    let greeting = raw.line();
    assert!(greeting.starts_with("{\"QMP\": {\"version\": {\"qemu\": {\"micro\": "), "{greeting}");
    assert!(greeting.ends_with("\"capabilities\": [\"oob\"]}}"), "{greeting}");
    let python = std::thread::spawn({
        let sock = sock.clone();
        move || {
            Command::new("python3")
                .arg("-c")
                .arg(PY_CLIENT)
                .arg(&sock)
                .output()
                .expect("python3 with qemu.qmp (scripts/install-deps.sh)")
        }
    });

    // Raw, with no newlines and with ids of every JSON kind; the same ids as the others use.
    raw.send(b"{'execute': 'qmp_capabilities', 'arguments': {'enable': ['oob']}}");
    raw.send(b"{\"execute\": \"query-name\", \"id\": 1}{\"execute\": \"query-status\", \"id\": [1, {\"a\": null}]}");
    raw.send(b"{\"execute\": \"query-name\"}{\"exec-oob\": \"query-yank\", \"id\": \"y\"}{\"execute\": \"query-status\", \"id\": 1.5}");
    let mut lines: Vec<String> = (0..6).map(|_| raw.line()).collect();
    assert_eq!(lines.remove(0), "{\"return\": {}}");
    // The oob reply may overtake; the in-band ones keep their order.
    let oob = lines.iter().position(|l| l.contains("\"id\": \"y\"")).expect("the oob reply");
    assert!(lines.remove(oob).starts_with("{\"return\": [{\"type\": "));
    assert_eq!(lines[0], "{\"return\": {\"name\": \"testvm\"}, \"id\": 1}");
    assert!(
        lines[1].ends_with("\"id\": [1, {\"a\": null}]}") && lines[1].contains("\"running\""),
        "{}",
        lines[1]
    );
    assert_eq!(lines[2], "{\"return\": {\"name\": \"testvm\"}}");
    assert!(lines[3].ends_with("\"id\": 1.5}"), "{}", lines[3]);

    // Ours, pipelined, beside them.
    rt.block_on(async {
        let calls = (0..50).map(|_| ours.call_raw("query-name", ()).send());
        for r in futures_join(calls).await {
            assert_eq!(r.unwrap()["name"], "testvm");
        }
        let stopped = ours.wait_for(qmp::EventFilter::name("STOP"), Duration::from_secs(5));
        ours.call_raw("stop", ()).send().await.unwrap();
        stopped.await.unwrap();
        ours.call_raw("cont", ()).send().await.unwrap();
    });
    // The raw client saw both events.
    let events = raw.until("RESUME");
    assert!(events.iter().any(|l| l.contains("\"event\": \"STOP\"")), "{events:?}");

    // The one-shot command.
    let out = Command::new(env!("CARGO_BIN_EXE_qmp"))
        .args(["-s", sock.to_str().unwrap(), "query-status"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"status\":\"running\""), "{:?}", out);

    let py = python.join().unwrap();
    let stdout = String::from_utf8_lossy(&py.stdout);
    assert!(py.status.success(), "qemu.qmp: {stdout}\n{}", String::from_utf8_lossy(&py.stderr));
    assert!(
        stdout.contains("name testvm") && stdout.contains("yank ok") && stdout.ends_with("OK\n"),
        "{stdout}"
    );
    eprintln!("every kind of client at once: {:?}", started.elapsed());
}

/// qemu.qmp's async client through the proxy: negotiation with oob, commands, an error, oob.
const PY_CLIENT: &str = r#"
import asyncio, sys
from qemu.qmp import QMPClient, ExecuteError
async def main(path):
    qmp = QMPClient("proxy-test")
    await qmp.connect(path)
    assert "oob" in qmp.greeting.QMP.capabilities
    for _ in range(20):
        r = await qmp.execute("query-name")
    print("name", r["name"])
    try:
        await qmp.execute("no-such-command")
        sys.exit("no error")
    except ExecuteError as e:
        assert e.error_class == "CommandNotFound", e
    y = await qmp.execute_msg(qmp.make_execute_msg("query-yank", oob=True))
    print("yank ok", len(y))
    await qmp.disconnect()
    print("OK")
asyncio.run(main(sys.argv[1]))
"#;

/// Awaits every future (the tests use no futures crate).
async fn futures_join<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = futs.map(Box::pin).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await);
    }
    out
}

#[test]
fn sixteen_clients_each_pipelining_a_thousand_with_the_same_ids() {
    let peer = Peer::qemu(1);
    let sock = peer.dir().join("proxy.sock");
    let _proxy = proxy(&peer, &["--listen", sock.to_str().unwrap()], &[&sock]);
    let started = Instant::now();
    let threads: Vec<_> = (0..16)
        .map(|c| {
            let sock = sock.clone();
            std::thread::spawn(move || {
                let mut r = Raw::negotiated(&sock);
                // Half the clients ask query-name, half query-status: a misrouted reply shows.
                let cmd = if c % 2 == 0 { "query-name" } else { "query-status" };
                let mut all = Vec::new();
                for id in 1..=1000 {
                    all.extend_from_slice(format!("{{\"execute\": \"{cmd}\", \"id\": {id}}}").as_bytes());
                }
                let writer = {
                    let mut s = r.sock.try_clone().unwrap();
                    std::thread::spawn(move || std::io::Write::write_all(&mut s, &all).unwrap())
                };
                for id in 1..=1000 {
                    let line = r.line();
                    assert!(
                        line.ends_with(&format!(", \"id\": {id}}}")),
                        "client {c}: expected id {id}: {line}"
                    );
                    let expected =
                        if c % 2 == 0 { "\"name\": \"testvm\"" } else { "\"status\": \"running\"" };
                    assert!(line.contains(expected), "client {c}: another client's reply: {line}");
                }
                writer.join().unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    eprintln!("16 x 1000 pipelined through the proxy: {:?}", started.elapsed());
}

#[test]
fn events_reach_every_client_in_order_and_a_client_that_never_reads_is_dropped() {
    let peer = Peer::qemu(1);
    let sock = peer.dir().join("proxy.sock");
    let p = proxy(&peer, &["--listen", sock.to_str().unwrap(), "--backlog", "16384"], &[&sock]);
    let readers: Vec<Raw> = (0..3).map(|_| Raw::negotiated(&sock)).collect();
    // Not negotiated: gets no events.
    let mut unnegotiated = Raw::connect(&sock);
    unnegotiated.line();
    // Negotiated, and never reads again: its events pile up.
    let mut stuck = Raw::negotiated(&sock);
    let mut driver = Raw::negotiated(&sock);
    const PAIRS: usize = 1500;
    let started = Instant::now();
    let readers: Vec<_> = readers
        .into_iter()
        .map(|mut r| {
            std::thread::spawn(move || {
                for i in 0..2 * PAIRS {
                    let line = r.line();
                    let want = if i % 2 == 0 { "\"event\": \"STOP\"" } else { "\"event\": \"RESUME\"" };
                    assert!(line.contains(want), "event {i}: {line}");
                }
            })
        })
        .collect();
    let mut batch = Vec::new();
    for i in 0..PAIRS {
        batch.extend_from_slice(
            format!("{{\"execute\": \"stop\", \"id\": {i}}}{{\"execute\": \"cont\", \"id\": {i}}}")
                .as_bytes(),
        );
    }
    let writer = {
        let mut s = driver.sock.try_clone().unwrap();
        std::thread::spawn(move || std::io::Write::write_all(&mut s, &batch).unwrap())
    };
    for i in 0..PAIRS {
        // Each event before its command's reply, as QEMU sends it.
        assert!(driver.line().contains("\"STOP\""));
        assert_eq!(driver.line(), format!("{{\"return\": {{}}, \"id\": {i}}}"));
        assert!(driver.line().contains("\"RESUME\""));
        assert_eq!(driver.line(), format!("{{\"return\": {{}}, \"id\": {i}}}"));
    }
    writer.join().unwrap();
    let took = started.elapsed();
    for r in readers {
        r.join().unwrap();
    }
    // The stuck client was cut off: its socket ends after what the kernel had buffered.
    let waited = stuck.eof_within(Duration::from_secs(10));
    let log = p.stderr();
    assert!(log.contains("is not reading"), "{log}");
    // The client that never negotiated got nothing but the greeting, and still works.
    unnegotiated.send(b"{\"execute\": \"qmp_capabilities\", \"id\": \"late\"}");
    assert_eq!(unnegotiated.line(), "{\"return\": {}, \"id\": \"late\"}");
    eprintln!("{} events to 4 readers beside a stuck client: {took:?}; its EOF after {waited:?}", 2 * PAIRS);
}

#[test]
fn a_client_killed_mid_command_then_qemu_killed_every_client_sees_eof_promptly() {
    let peer = Peer::qemu(1);
    let sock = peer.dir().join("proxy.sock");
    let _p = proxy(&peer, &["--listen", sock.to_str().unwrap()], &[&sock]);
    {
        // Sends a burst and goes away before its replies come.
        let mut gone = Raw::negotiated(&sock);
        for i in 0..200 {
            gone.send(format!("{{\"execute\": \"query-status\", \"id\": {i}}}").as_bytes());
        }
    }
    let mut others: Vec<Raw> = (0..4).map(|_| Raw::negotiated(&sock)).collect();
    for (i, o) in others.iter_mut().enumerate() {
        o.send(format!("{{\"execute\": \"query-name\", \"id\": {i}}}").as_bytes());
        assert_eq!(o.line(), format!("{{\"return\": {{\"name\": \"testvm\"}}, \"id\": {i}}}"));
    }
    let mut unnegotiated = Raw::connect(&sock);
    unnegotiated.line();
    others.push(unnegotiated);
    peer.signal("KILL");
    let killed = Instant::now();
    let mut worst = Duration::ZERO;
    for o in &mut others {
        o.eof_within(Duration::from_secs(2));
        worst = worst.max(killed.elapsed());
    }
    eprintln!("EOF at every client {worst:?} after QEMU was killed");
    assert!(worst < Duration::from_millis(100), "{worst:?}");
}

#[test]
fn read_only_policy_refuses_stop_while_a_full_socket_beside_it_allows_it() {
    let peer = Peer::qemu(1);
    let (full, ro, custom) =
        (peer.dir().join("full.sock"), peer.dir().join("ro.sock"), peer.dir().join("custom.sock"));
    let custom_spec = format!("{},deny=query-name,mode=0660", custom.display());
    let _p = proxy(
        &peer,
        &[
            "--listen",
            full.to_str().unwrap(),
            "--listen-read-only",
            ro.to_str().unwrap(),
            "--listen",
            &custom_spec,
        ],
        &[&full, &ro, &custom],
    );
    assert_eq!(std::fs::metadata(&custom).unwrap().permissions().mode() & 0o777, 0o660);
    let mut r = Raw::negotiated(&ro);
    r.send(b"{\"execute\": \"stop\", \"id\": 1}{\"execute\": \"query-status\", \"id\": 2}{\"execute\": \"qom-list\", \"arguments\": {\"path\": \"/\"}, \"id\": 3}");
    assert_eq!(
        r.line(),
        "{\"id\": 1, \"error\": {\"class\": \"GenericError\", \"desc\": \"The command stop has been refused by the QMP proxy's policy for this socket\"}}"
    );
    assert!(r.line().contains("\"status\": \"running\""));
    assert!(r.line().starts_with("{\"return\": [{"));
    let mut f = Raw::negotiated(&full);
    f.send(b"{\"execute\": \"stop\", \"id\": 1}");
    assert!(f.until("\"id\": 1").last().unwrap() == "{\"return\": {}, \"id\": 1}");
    r.send(b"{\"execute\": \"query-status\", \"id\": 4}");
    let lines = r.until("\"id\": 4");
    assert!(lines.last().unwrap().contains("\"status\": \"paused\""), "{lines:?}");
    let mut c = Raw::negotiated(&custom);
    c.send(b"{\"execute\": \"query-name\", \"id\": 5}{\"execute\": \"cont\", \"id\": 6}");
    assert!(c.line().contains("refused by the QMP proxy's policy"));
    assert!(c.until("\"id\": 6").last().unwrap() == "{\"return\": {}, \"id\": 6}");
}

#[test]
fn negotiation_and_bad_input_get_the_same_answers_as_from_qemu_itself() {
    let peer = Peer::qemu(2);
    let sock = peer.dir().join("proxy.sock");
    let _p = proxy(&peer, &["--listen", sock.to_str().unwrap()], &[&sock]);
    let mut direct = Raw::connect(peer.socket(1));
    let mut proxied = Raw::connect(&sock);
    assert_eq!(proxied.line(), direct.line(), "the greeting");
    let steps: &[&[u8]] = &[
        b"{\"execute\": \"query-status\", \"id\": 7}",
        b"{\"execute\": \"query-status\"}",
        b"{\"exec-oob\": \"query-yank\", \"id\": 1}",
        b"[1, 2]",
        b"{\"execute\": 42}",
        b"{\"arguments\": {}, \"id\": {\"x\": 1}}",
        b"{\"execute\": \"stop\", \"bogus\": 1}",
        b"{bad json}\xff{\"execute\": -}",
        b"{'execute': 'qmp_capabilities', 'arguments': {'enable': ['bogus']}, 'id': 'c1'}",
        b"{\"execute\": \"qmp_capabilities\", \"arguments\": {\"extra\": true}, \"id\": \"c2\"}",
        b"{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": [\"oob\"]}, \"id\": \"c3\"}",
        b"{\"execute\": \"qmp_capabilities\", \"id\": \"c4\"}",
        b"{\"exec-oob\": \"query-status\", \"id\": \"o1\"}",
        b"{\"execute\": \"nope\", \"id\": null}",
        b"{\"execute\": \"query-name\", \"arguments\": {\"x\": 1}, \"id\": 3}",
    ];
    for step in steps {
        let mut input = step.to_vec();
        input.extend_from_slice(b"{\"execute\": \"query-name\", \"id\": \"sentinel\"}");
        direct.send(&input);
        proxied.send(&input);
        let want = direct.until("sentinel");
        let got = proxied.until("sentinel");
        assert_eq!(got, want, "for {}", String::from_utf8_lossy(step));
    }
}

#[test]
fn descriptors_passed_with_getfd_and_add_fd_reach_qemu() {
    use std::os::fd::AsFd;
    let peer = Peer::qemu(2);
    let sock = peer.dir().join("proxy.sock");
    let _p = proxy(&peer, &["--listen", sock.to_str().unwrap()], &[&sock]);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let ours = qmp::Client::connect(sock.as_path()).await.unwrap();
        let (r, _w) = nix::unistd::pipe().unwrap();
        ours.call_raw("getfd", serde_json::json!({"fdname": "fd0"})).fds(&[r.as_fd()]).send().await.unwrap();
        // QEMU has it: closing it by name works (and a name it lacks is an error).
        ours.call_raw("closefd", serde_json::json!({"fdname": "fd0"})).send().await.unwrap();
        let added = ours
            .call_raw("add-fd", serde_json::json!({"opaque": "via proxy"}))
            .fds(&[r.as_fd()])
            .send()
            .await
            .unwrap();
        let sets = ours.call_raw("query-fdsets", ()).send().await.unwrap();
        assert_eq!(sets[0]["fdset-id"], added["fdset-id"], "{sets}");
        assert_eq!(sets[0]["fds"][0]["opaque"], "via proxy", "{sets}");
        // Without a descriptor: QEMU's own error, as from a direct connection.
        let direct = qmp::Client::connect(peer.socket(1)).await.unwrap();
        let a = ours.call_raw("getfd", serde_json::json!({"fdname": "x"})).send().await.unwrap_err();
        let b = direct.call_raw("getfd", serde_json::json!({"fdname": "x"})).send().await.unwrap_err();
        assert_eq!(a.to_string(), b.to_string());
    });
}

#[test]
fn with_reconnect_clients_are_held_across_a_qemu_restart() {
    let dir = qmp_testkit::tempdir();
    let qsock = dir.path().join("qemu.sock");
    let sock = dir.path().join("proxy.sock");
    let first = Peer::qemu_at(&qsock);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !qmp_testkit::is_listening(&qsock) {
        assert!(Instant::now() < deadline, "QEMU did not listen");
        std::thread::sleep(Duration::from_millis(5));
    }
    let _p = proxy_support::Proc::start(
        &[
            "proxy",
            "--upstream",
            qsock.to_str().unwrap(),
            "--listen",
            sock.to_str().unwrap(),
            "--reconnect",
            "20",
        ],
        &[&sock],
        dir.path().join("proxy.log"),
    );
    let mut a = Raw::negotiated(&sock);
    a.send(b"{\"execute\": \"stop\", \"id\": 1}");
    assert_eq!(a.until("\"id\": 1").last().unwrap(), "{\"return\": {}, \"id\": 1}");
    drop(first); // killed
    std::thread::sleep(Duration::from_millis(100));
    // Held, not disconnected: asked meanwhile, it is told QEMU is not there.
    a.send(b"{\"execute\": \"query-status\", \"id\": 2}");
    assert!(a.line().contains("QEMU is not connected; the QMP proxy is reconnecting"));
    let _second = Peer::qemu_at(&qsock);
    let event = a.line();
    let v: serde_json::Value = serde_json::from_str(&event).unwrap();
    assert_eq!(v["event"], "__qmp_proxy.UPSTREAM_RECONNECTED", "{event}");
    assert_eq!(v["data"]["failed-requests"], 0, "{event}");
    assert!(v["data"]["disconnected"]["seconds"].is_u64(), "{event}");
    // The new QEMU answers (running: it is not the one that was stopped).
    a.send(b"{\"execute\": \"query-status\", \"id\": 3}");
    assert!(a.line().contains("\"status\": \"running\""));
}

#[path = "support/pty.rs"]
#[allow(dead_code)]
mod pty;

#[test]
fn our_shell_in_a_terminal_beside_another_client() {
    let peer = Peer::qemu(1);
    let sock = peer.dir().join("proxy.sock");
    let _p = proxy(&peer, &["--listen", sock.to_str().unwrap()], &[&sock]);
    let mut other = Raw::negotiated(&sock);
    let home = qmp_testkit::tempdir();
    let mut sh = pty::Pty::spawn(&["shell", "-s", sock.to_str().unwrap()], home.path(), &[]);
    sh.expect("Connected to QEMU 7.");
    sh.prompt();
    let out = sh.line("query-status");
    assert!(out.contains("\"status\": \"running\""), "{out:?}");
    let out = sh.line("stop");
    assert!(out.contains("{\"return\": {}}"), "{out:?}");
    // The other client saw the shell's stop, and its own ids are its own.
    other.send(b"{\"execute\": \"query-status\", \"id\": 1}");
    let lines = other.until("\"id\": 1");
    assert!(lines[0].contains("\"event\": \"STOP\""), "{lines:?}");
    assert!(lines.last().unwrap().contains("\"status\": \"paused\""), "{lines:?}");
    sh.send("\x04"); // end of input leaves the shell
    assert!(sh.wait().success());
}

#[test]
fn a_tls_upstream_with_a_client_certificate() {
    let certs = qmp_testkit::tls::Certs::generate();
    let qemu = Peer::qemu_tls(&certs, true);
    let dir = qmp_testkit::tempdir();
    let sock = dir.path().join("proxy.sock");
    let up = qemu.tls_address();
    let (ca, cert, key) = (certs.ca(), certs.client_cert(), certs.client_key());
    let _p = proxy_support::Proc::start(
        &[
            "--tls-ca",
            ca.to_str().unwrap(),
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "proxy",
            "--upstream",
            &up,
            "--listen",
            sock.to_str().unwrap(),
        ],
        &[&sock],
        dir.path().join("proxy.log"),
    );
    let mut a = Raw::negotiated(&sock);
    let mut b = Raw::negotiated(&sock);
    // Pipelined, from two clients: each request reaches QEMU at once (the space record).
    a.send(b"{\"execute\": \"stop\", \"id\": 1}{\"execute\": \"query-status\", \"id\": 2}");
    let lines = a.until("\"id\": 2");
    assert!(lines[0].contains("\"STOP\"") && lines.last().unwrap().contains("\"paused\""), "{lines:?}");
    b.send(b"{\"execute\": \"cont\", \"id\": 1}");
    let lines = b.until("\"id\": 1");
    assert!(
        lines.iter().any(|l| l.contains("\"STOP\"")) && lines.iter().any(|l| l.contains("\"RESUME\"")),
        "{lines:?}"
    );
    assert_eq!(lines.last().unwrap(), "{\"return\": {}, \"id\": 1}");
}

#[test]
fn garbage_and_oversized_input_get_qemus_errors_and_never_take_the_proxy_down() {
    let peer = Peer::qemu(1);
    let sock = peer.dir().join("proxy.sock");
    let mut p = proxy(&peer, &["--listen", sock.to_str().unwrap()], &[&sock]);
    // Pseudo-random bytes, before and after negotiating, then a request that must still work.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let alphabet = b"{}[]:,\"'\\ xe1-.\xff\x01nul";
    let mut noise = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                alphabet[(seed % alphabet.len() as u64) as usize]
            })
            .collect()
    };
    for negotiate in [false, true] {
        let mut r = if negotiate { Raw::negotiated(&sock) } else { Raw::connect(&sock) };
        if !negotiate {
            r.line();
        }
        r.send(&noise(200_000));
        // The 0x01 resets the parser, a new value follows.
        r.send(b"\x01{\"execute\": \"qmp_capabilities\", \"id\": \"end\"}");
        r.until("\"id\": \"end\"");
    }
    // A value past the 16 MiB cap: QEMU's error, and the connection goes on.
    let mut r = Raw::negotiated(&sock);
    let mut big = b"{\"execute\": \"query-name\", \"arguments\": {\"x\": \"".to_vec();
    big.resize(17 << 20, b'a');
    big.extend_from_slice(b"\"}}");
    let writer = {
        let mut s = r.sock.try_clone().unwrap();
        std::thread::spawn(move || std::io::Write::write_all(&mut s, &big).unwrap())
    };
    assert_eq!(
        r.line(),
        "{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON token size limit exceeded\"}}"
    );
    writer.join().unwrap();
    r.send(b"{\"execute\": \"query-name\", \"id\": 1}");
    assert_eq!(r.until("\"id\": 1").last().unwrap(), "{\"return\": {\"name\": \"testvm\"}, \"id\": 1}");
    assert!(p.child.try_wait().unwrap().is_none(), "the proxy exited:\n{}", p.stderr());
}

#[test]
fn clients_over_the_cap_are_refused_with_a_qmp_error_until_one_leaves() {
    let peer = Peer::qemu(1);
    let sock = peer.dir().join("capped.sock");
    let _p = proxy(&peer, &["--listen", sock.to_str().unwrap(), "--max-clients", "2"], &[&sock]);
    let first = Raw::negotiated(&sock);
    let mut second = Raw::negotiated(&sock);
    let mut third = Raw::connect(&sock);
    let refusal = third.line();
    assert!(refusal.starts_with("{\"error\": {\"class\": \"GenericError\""), "{refusal}");
    assert!(refusal.contains("at most 2"), "{refusal}");
    third.eof_within(Duration::from_secs(5));
    // The two served ones go on; once one leaves, a newcomer is served.
    second.send(b"{\"execute\": \"query-status\", \"id\": 1}");
    assert!(second.line().contains("\"status\""));
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut next = Raw::connect(&sock);
        if next.line().starts_with("{\"QMP\"") {
            break;
        }
        assert!(Instant::now() < deadline, "no newcomer served after a client left");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = Command::new(env!("CARGO_BIN_EXE_qmp"))
        .args(["proxy", "--upstream", "/x", "--listen", "/y", "--max-clients", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}
