//! Frames and decodes what real QEMU sends, including its ~207 KB `query-qmp-schema` reply,
//! read from the socket in QEMU's own read sizes and cut every other way, and measures how
//! long framing and decoding that reply take. Fails when `qemu-system-x86_64` is missing.
//!
//! For the timing that matters, run it in release mode:
//! `cargo test --release -p qmp-proto --test real_qemu_schema -- --nocapture`.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use qmp_proto::{Framer, Message};

/// A VM-less QEMU on a unix socket in a private directory, killed on drop.
struct Qemu {
    child: Child,
    dir: PathBuf,
}

impl Qemu {
    fn start() -> Qemu {
        let nanos = std::time::SystemTime::UNIX_EPOCH.elapsed().unwrap().as_nanos();
        let dir = std::env::temp_dir().join(format!("qmp-proto-test-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("qmp.sock");
        let child = Command::new("qemu-system-x86_64")
            .args(["-machine", "none", "-nodefaults", "-display", "none", "-qmp"])
            // wait=on: this connection is QEMU's first, accepted before the monitor exists, away from
            // QEMU 7.2's start-up race (a client that comes while the monitor moves to its thread).
            .arg(format!("unix:{},server=on,wait=on", sock.display()))
            .stdin(Stdio::null())
            .spawn()
            .expect("qemu-system-x86_64 must be installed (scripts/install-deps.sh)");
        Qemu { child, dir }
    }

    fn connect(&self) -> UnixStream {
        let sock = self.dir.join("qmp.sock");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match UnixStream::connect(&sock) {
                Ok(s) => {
                    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                    return s;
                }
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => panic!("cannot connect to QEMU at {}: {e}", sock.display()),
            }
        }
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Reads from `sock` straight into the framer until `n` frames have come, returning the
/// frames and the raw bytes read.
fn read_frames(sock: &mut UnixStream, framer: &mut Framer, n: usize, raw: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    while frames.len() < n {
        while let Some(frame) = framer.next_frame().expect("QEMU sent bad framing") {
            frames.push(frame.bytes.to_vec());
        }
        if frames.len() >= n {
            break;
        }
        let buf = framer.buffer_mut(4096);
        let before = buf.len();
        buf.resize(before + 4096, 0);
        let got = sock.read(&mut buf[before..]).expect("read from QEMU");
        buf.truncate(before + got);
        assert!(got > 0, "QEMU hung up");
        raw.extend_from_slice(&buf[before..]);
    }
    assert_eq!(frames.len(), n, "QEMU sent more than asked for");
    frames
}

fn frame_all(bytes: &[u8], read: usize) -> Vec<Vec<u8>> {
    let mut framer = Framer::new();
    let mut frames = Vec::new();
    for chunk in bytes.chunks(read) {
        framer.extend(chunk);
        while let Some(frame) = framer.next_frame().unwrap() {
            frames.push(frame.bytes.to_vec());
        }
    }
    assert!(!framer.in_partial_value());
    frames
}

fn time_per_iter(iters: u32, mut f: impl FnMut()) -> f64 {
    f(); // warm up
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(iters)
}

#[test]
fn real_qemu_schema_reply_frames_and_decodes_however_cut() {
    let qemu = Qemu::start();
    let mut sock = qemu.connect();
    let mut framer = Framer::new();
    let mut raw = Vec::new();

    let greeting = read_frames(&mut sock, &mut framer, 1, &mut raw);
    let Message::Greeting(g) = Message::from_slice(&greeting[0]).unwrap() else { panic!("not a greeting") };
    assert!(g.offers_oob());
    // Sent in one write with no newline: QEMU reads a JSON stream, as the framer does.
    sock.write_all(b"{\"execute\": \"qmp_capabilities\"}{\"execute\": \"query-qmp-schema\", \"id\": \"s\"}")
        .unwrap();
    let replies = read_frames(&mut sock, &mut framer, 2, &mut raw);
    assert!(!framer.in_partial_value());
    assert!(matches!(Message::from_slice(&replies[0]).unwrap(), Message::Response(r) if r.result.is_ok()));
    let schema = &replies[1];
    assert!(schema.len() > 100_000, "schema reply is only {} bytes", schema.len());
    let Message::Response(resp) = Message::from_slice(schema).unwrap() else { panic!("not a response") };
    assert_eq!(resp.id, Some("s".into()));
    let entries: Vec<serde_json::Value> = serde_json::from_str(resp.result.as_ref().unwrap().get()).unwrap();
    assert!(entries.len() > 1000, "{} schema entries", entries.len());
    assert!(entries.iter().any(|e| e["name"] == "query-status" && e["meta-type"] == "command"));

    // The bytes as they came off the socket (CRLF-ended lines) frame the same however cut.
    let expected: Vec<Vec<u8>> = greeting.iter().chain(&replies).cloned().collect();
    for read in [1, 7, 4096, raw.len()] {
        assert_eq!(frame_all(&raw, read), expected, "framing {read} bytes at a time");
    }

    // Measurements, printed for the record (not asserted: machines differ).
    let line: Vec<u8> = [&schema[..], b"\r\n"].concat();
    let iters = if cfg!(debug_assertions) { 3 } else { 200 };
    let mut framer = Framer::new();
    let frame_us = time_per_iter(iters, || {
        framer.extend(&line);
        let frame = framer.next_frame().unwrap().unwrap();
        assert_eq!(frame.bytes.len(), schema.len());
        assert!(framer.next_frame().unwrap().is_none());
    });
    let mut framer = Framer::new();
    let both_us = time_per_iter(iters, || {
        framer.extend(&line);
        let frame = framer.next_frame().unwrap().unwrap();
        assert!(matches!(Message::from_slice(frame.bytes).unwrap(), Message::Response(_)));
    });
    let value_us = time_per_iter(iters, || {
        let v: serde_json::Value = serde_json::from_slice(schema).unwrap();
        assert!(v.is_object());
    });
    println!(
        "query-qmp-schema reply, {} bytes ({}): framing {frame_us:.1} µs, framing + Message::from_slice {both_us:.1} µs \
         (for scale: serde_json::Value parse {value_us:.1} µs)",
        schema.len(),
        if cfg!(debug_assertions) { "debug build" } else { "release build" },
    );
}
