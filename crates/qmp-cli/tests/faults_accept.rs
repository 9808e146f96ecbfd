//! `qmp sim` with few file descriptors (RLIMIT_NOFILE 256) and half as many clients again:
//! it must keep accepting once they leave, and refuse those over its connection cap with a
//! QMP error, never hang them.

mod sim_child;
mod support;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use sim_child::{need_fds, Sim};

const FD_LIMIT: u32 = 256;
const CLIENTS: usize = FD_LIMIT as usize * 3 / 2;

fn connect_all(sim: &Sim) -> Vec<BufReader<UnixStream>> {
    (0..CLIENTS)
        .map(|i| {
            let s = UnixStream::connect(&sim.socket).unwrap_or_else(|e| panic!("client {i}: {e}"));
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            BufReader::new(s)
        })
        .collect()
}

/// `qmp -s SOCKET query-status` after everyone left: served (at once, or after a refusal
/// or two while the sim still counts clients that just hung up), and the sim still runs.
fn newcomer_is_served(sim: &mut Sim) -> Duration {
    let t = Instant::now();
    loop {
        let out = support::qmp(&["-s", sim.socket.to_str().unwrap(), "query-status"]);
        // The client reports a refusal as a close before the greeting.
        if out.code == Some(3) && out.stderr.contains("before the greeting") {
            assert!(t.elapsed() < Duration::from_secs(5), "still refused after 5 s: {out:?}");
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        out.assert_code(0);
        assert!(out.stdout.contains("\"running\""), "{out:?}");
        assert!(sim.alive());
        return t.elapsed();
    }
}

/// Before the fix the simulator's accept loop ended at the first EMFILE: `qmp sim` lived on
/// with its socket in place and every later client got "connection refused".
#[test]
fn qmp_sim_keeps_accepting_after_running_out_of_descriptors() {
    need_fds(CLIENTS as u64 * 2 + 256);
    // The default cap (512) is above the limit: the sim runs out of descriptors first.
    let mut sim = Sim::start(&["--many-clients"], &[], Some(FD_LIMIT));
    let mut clients = connect_all(&sim);
    let mut greeted = 0;
    for c in &mut clients {
        c.get_ref().set_read_timeout(Some(Duration::from_millis(1500))).unwrap();
        let mut line = String::new();
        match c.read_line(&mut line) {
            Ok(n) if n > 0 => {
                assert!(line.starts_with("{\"QMP\": "), "{line:?}");
                greeted += 1;
            }
            _ => break,
        }
    }
    assert!(
        (FD_LIMIT as usize - 32..FD_LIMIT as usize).contains(&greeted),
        "{greeted} of {CLIENTS} greeted by a sim limited to {FD_LIMIT} fds"
    );
    // The rest wait in the backlog: no greeting, no EOF.
    for c in &mut clients[greeted + 1..] {
        c.get_ref().set_nonblocking(true).unwrap();
        let r = c.get_mut().read(&mut [0u8; 1]);
        assert!(matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock), "{r:?}");
    }
    assert!(sim.alive());
    drop(clients);
    let took = newcomer_is_served(&mut sim);
    sim.signal(nix::sys::signal::Signal::SIGTERM);
    let (status, stderr) = sim.wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{stderr}");
    // One warning when it ran out, one line when it recovered: the operator sees both.
    let lines = |text: &str| stderr.lines().filter(|l| l.starts_with(text)).count();
    let warning = "qmp sim: warning: QMP listener cannot accept connections (Too many open files";
    assert_eq!(lines(warning), 1, "{stderr}");
    assert_eq!(lines("qmp sim: QMP listener accepting again after "), 1, "{stderr}");
    let recovered = stderr.lines().find(|l| l.contains("accepting again")).unwrap();
    eprintln!("{greeted} of {CLIENTS} greeted at {FD_LIMIT} fds; after all left a one-shot took {took:?}; {recovered}");
}

/// With a cap below the fd limit ($QMP_SIM_MAX_CONNECTIONS), the clients over it get QMP's
/// error object and EOF instead of a greeting; those served are unaffected.
#[test]
fn qmp_sim_refuses_clients_over_its_cap_with_a_qmp_error() {
    const CAP: usize = 200;
    need_fds(CLIENTS as u64 * 2 + 256);
    let mut sim =
        Sim::start(&["--many-clients"], &[("QMP_SIM_MAX_CONNECTIONS", &CAP.to_string())], Some(FD_LIMIT));
    let started = Instant::now();
    let mut clients = connect_all(&sim);
    let refusal = format!(
        "{{\"error\": {{\"class\": \"GenericError\", \"desc\": \"Too many QMP connections: this server serves \
         at most {CAP} at once; try again later\"}}}}\r\n"
    );
    let (mut greeted, mut refused) = (0, 0);
    for (i, c) in clients.iter_mut().enumerate() {
        let mut line = String::new();
        c.read_line(&mut line).unwrap_or_else(|e| panic!("client {i}: {e}"));
        if line.starts_with("{\"QMP\": ") {
            greeted += 1;
        } else {
            assert_eq!(line, refusal, "client {i}");
            line.clear();
            assert_eq!(c.read_line(&mut line).unwrap(), 0, "client {i}: EOF after the refusal");
            refused += 1;
        }
    }
    let answered = started.elapsed();
    assert_eq!((greeted, refused), (CAP, CLIENTS - CAP));
    assert!(sim.alive());
    drop(clients);
    let took = newcomer_is_served(&mut sim);
    eprintln!(
        "{CLIENTS} clients at {FD_LIMIT} fds, cap {CAP}: {greeted} greeted, {refused} refused, all in \
         {answered:?}; after all left a one-shot took {took:?}"
    );
    sim.signal(nix::sys::signal::Signal::SIGTERM);
    let (status, stderr) = sim.wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{stderr}");
    let warning =
        format!("qmp sim: warning: QMP listener: {CAP} clients connected; refusing more until one leaves");
    assert!(stderr.lines().any(|l| l == warning), "{stderr}");
}

/// A cap that is not a number (or is 0), from the option or the environment, is a usage
/// error reported at start (exit 2), not ignored.
#[test]
fn a_bad_max_connections_value_is_an_error() {
    let out = support::qmp_env(&["sim"], &[("QMP_SIM_MAX_CONNECTIONS", "lots")]);
    out.assert_code(2);
    assert!(out.stderr.contains("invalid value 'lots' for '--max-connections"), "{out:?}");
    for bad in ["0", "many", "99999999999"] {
        let out = support::qmp(&["sim", "--max-connections", bad]);
        out.assert_code(2);
        assert!(out.stderr.contains("--max-connections"), "{out:?}");
    }
}
