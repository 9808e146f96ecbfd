//! The `qmp` binary under a pseudo-terminal, typed at as a person would: keys sent to the
//! master side, the screen read back, the line editor's cursor query answered.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::pty::{openpty, Winsize};

/// How long to wait for any expected output.
pub const WAIT: Duration = Duration::from_secs(15);

/// The `qmp` binary under a pseudo-terminal.
pub struct Pty {
    /// The `qmp` process.
    pub child: Child,
    /// The terminal's master side (what a person's keyboard and screen are).
    pub master: File,
    output: Arc<Mutex<Vec<u8>>>,
    /// How far `expect` has read.
    seen: usize,
    /// The reader, which ends once `qmp` has exited and its output is all read.
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Pty {
    pub fn spawn(args: &[&str], home: &Path, extra_env: &[(&str, &Path)]) -> Pty {
        let size = Winsize { ws_row: 50, ws_col: 250, ws_xpixel: 0, ws_ypixel: 0 };
        let pty = openpty(Some(&size), None).expect("openpty");
        let slave = File::from(pty.slave);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_qmp"));
        // Its own process group, so a failing test also ends the QEMU that `launch` started.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd.args(args)
            .env("HOME", home)
            .env("TERM", "xterm")
            .env_remove("QMP_SOCKET")
            .env_remove("QMP_PATH")
            .stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("run qmp");
        drop(cmd); // closes our copies of the slave side, so EOF comes when qmp exits
        let master = File::from(pty.master);
        let output = Arc::new(Mutex::new(Vec::new()));
        let (mut reader, mut answerer, sink) =
            (master.try_clone().unwrap(), master.try_clone().unwrap(), output.clone());
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let chunk = &buf[..n];
                // Answer the line editor's cursor position query as a terminal would.
                if chunk.windows(4).any(|w| w == b"\x1b[6n") {
                    let _ = answerer.write_all(b"\x1b[1;1R");
                }
                sink.lock().unwrap().extend_from_slice(chunk);
            }
        });
        Pty { child, master, output, seen: 0, reader: Some(reader) }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// Waits for `needle` after what earlier calls matched; returns the text up to its end.
    pub fn expect(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let all = self.output.lock().unwrap().clone();
            let rest = String::from_utf8_lossy(&all[self.seen.min(all.len())..]).into_owned();
            if let Some(pos) = rest.find(needle) {
                let upto = rest[..pos + needle.len()].to_string();
                self.seen += upto.len();
                return upto;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {needle:?}; output after the last match:\n{rest:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn send(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).unwrap();
        self.master.flush().unwrap();
    }

    /// Waits for a new prompt (not a redraw of the current one): each read of a line starts by
    /// turning on bracketed paste.
    pub fn prompt_of(&mut self, prompt: &str) -> String {
        let before = self.expect("\x1b[?2004h");
        before + &self.expect(prompt)
    }

    pub fn prompt(&mut self) -> String {
        self.prompt_of("(QEMU) ")
    }

    /// Types a line and waits for the next prompt.
    pub fn line(&mut self, text: &str) -> String {
        self.send(&format!("{text}\r"));
        self.prompt()
    }

    pub fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // What it wrote just before exiting may still be in the terminal: read on to
                // the end (the master reads EIO once no process holds the slave side; a
                // child process of qmp's that still holds it bounds this by the deadline).
                while self.reader.as_ref().is_some_and(|r| !r.is_finished()) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("qmp did not exit; output:\n{}", self.text());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
