//! The command line's parsing: options, subcommands and their errors.

use super::*;

fn parse(argv: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("qmp").chain(argv.iter().copied()))
}

#[test]
fn clap_table_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn a_qmp_command_takes_everything_after_it() {
    let cli = parse(&[
        "-s",
        "/tmp/s",
        "--timeout",
        "1.5",
        "block-job-cancel",
        "device=x",
        "--force",
        "--args",
        "{}",
    ])
    .unwrap();
    assert_eq!(cli.global.socket.as_deref(), Some("/tmp/s"));
    assert_eq!(cli.global.timeout, Some(Duration::from_millis(1500)));
    let Some(Command::Qmp(words)) = cli.command else { panic!("{:?}", cli.command) };
    assert_eq!(words, ["block-job-cancel", "device=x", "--force", "--args", "{}"]);
}

#[test]
fn long_option_spellings() {
    let cli = parse(&["--path=/tmp/s", "query-status"]).unwrap();
    assert_eq!(cli.global.socket.as_deref(), Some("/tmp/s"));
    let cli = parse(&["--socket", "h:1", "query-status"]).unwrap();
    assert_eq!(cli.global.socket.as_deref(), Some("h:1"));
}

#[test]
fn hmp_joins_words_and_takes_dashes() {
    let cli = parse(&["hmp", "info", "status"]).unwrap();
    let Some(Command::Hmp(h)) = cli.command else { panic!() };
    assert_eq!(h.command_line, ["info", "status"]);
    let cli = parse(&["hmp", "--cpu-index", "1", "info registers -a"]).unwrap();
    let Some(Command::Hmp(h)) = cli.command else { panic!() };
    assert_eq!((h.cpu_index, h.command_line), (Some(1), vec!["info registers -a".to_string()]));
    assert!(parse(&["hmp"]).is_err());
}

#[test]
fn subcommands_of_their_own() {
    let cli = parse(&["launch", "--", "qemu-system-x86_64", "-machine", "none"]).unwrap();
    assert!(matches!(cli.command, Some(Command::Launch(_))), "{:?}", cli.command);
    let cli = parse(&["-s", "/x", "shell"]).unwrap();
    assert!(matches!(cli.command, Some(Command::Shell(_))), "{:?}", cli.command);
    let cli = parse(&["sim", "--socket", "/tmp/s", "--tcp", "127.0.0.1:0"]).unwrap();
    let Some(Command::Sim(sim)) = cli.command else { panic!() };
    assert_eq!((sim.socket, sim.tcp), (vec![PathBuf::from("/tmp/s")], Some("127.0.0.1:0".to_string())));
    let cli = parse(&["--sim", "query-status"]).unwrap();
    assert!(cli.global.sim);
}

#[test]
fn bad_options_are_usage_errors() {
    for argv in [
        &["--timeout", "-1", "x"][..],
        &["--timeout", "soon", "x"],
        &["--timeout", "inf", "x"],
        &["--pretty", "--compact", "x"],
        &["--sim", "-s", "/x", "x"],
        &["--nope", "x"],
    ] {
        let e = parse(argv).unwrap_err();
        assert!(e.use_stderr(), "{argv:?}");
    }
}

#[test]
fn connection_options() {
    let cli = parse(&[
        "--wait",
        "2.5",
        "--tls-ca",
        "/ca.pem",
        "--tls-cert",
        "/c.pem",
        "--tls-key",
        "/k.pem",
        "--tls-server-name",
        "vm1",
        "-s",
        "tls:127.0.0.1:4444",
        "query-status",
    ])
    .unwrap();
    let c = &cli.global.connect;
    assert_eq!(c.wait, Some(Duration::from_millis(2500)));
    assert_eq!(c.tls_ca.as_deref(), Some(std::path::Path::new("/ca.pem")));
    assert_eq!((c.tls_cert.is_some(), c.tls_key.is_some()), (true, true));
    assert_eq!(c.tls_server_name.as_deref(), Some("vm1"));
    let cli = parse(&["shell", "--tls-ca", "/ca.pem", "--wait", "1", "-s", "tls:h:1"]).unwrap();
    let Some(Command::Shell(shell)) = cli.command else { panic!() };
    assert_eq!(shell.connect.wait, Some(Duration::from_secs(1)));
    for argv in [
        &["--tls-cert", "/c.pem", "x"][..],
        &["--tls-key", "/k.pem", "x"],
        &["--wait", "-1", "x"],
        &["--wait", "soon", "x"],
        &["--fd", "x", "x"],
    ] {
        assert!(parse(argv).unwrap_err().use_stderr(), "{argv:?}");
    }
}

#[test]
fn pass_fd_repeats_in_order() {
    // The test process has its standard descriptors open.
    let cli = parse(&["--pass-fd", "2", "--pass-fd", "0", "getfd", "fdname=x"]).unwrap();
    let fds: Vec<i32> = cli.global.pass_fd.iter().map(|p| p.number()).collect();
    assert_eq!(fds, [2, 0]);
    for argv in
        [&["--pass-fd", "x", "getfd"][..], &["--pass-fd", "-1", "getfd"], &["--pass-fd", "4096", "getfd"]]
    {
        assert!(parse(argv).unwrap_err().use_stderr(), "{argv:?}");
    }
}

#[test]
fn events_wait_and_then_wait() {
    let cli = parse(&[
        "-s",
        "/x",
        "events",
        "--filter",
        "stop",
        "--filter",
        "RESUME",
        "--data",
        "a.b=1",
        "--count",
        "2",
        "--timeout",
        "0.5",
    ])
    .unwrap();
    let Some(Command::Events(e)) = cli.command else { panic!("{:?}", cli.command) };
    assert_eq!(e.filter, ["stop", "RESUME"]);
    assert_eq!(e.data, [events::DataMatch { key: "a.b".into(), value: 1.into() }]);
    assert_eq!((e.count, e.timeout), (Some(2), Some(Duration::from_millis(500))));
    // The --timeout before `events` is the global one (connecting), after it the watch's.
    let cli = parse(&["--timeout", "3", "events"]).unwrap();
    let Some(Command::Events(e)) = cli.command else { panic!() };
    assert_eq!((cli.global.timeout, e.timeout), (Some(Duration::from_secs(3)), None));

    let cli = parse(&["wait", "SHUTDOWN", "reason=host-qmp-quit", "--timeout", "1"]).unwrap();
    let Some(Command::Wait(w)) = cli.command else { panic!() };
    assert_eq!((w.event.as_str(), w.data.len(), w.timeout), ("SHUTDOWN", 1, Some(Duration::from_secs(1))));

    let cli = parse(&["-v", "--then-wait", "stop,x=y", "stop"]).unwrap();
    assert!(cli.global.verbose);
    let spec = cli.global.then_wait.unwrap();
    assert_eq!((spec.name.as_str(), spec.data[0].value.clone()), ("STOP", "y".into()));
    // After the command, -v is an argument of the command like any other word.
    let cli = parse(&["query-status", "-v"]).unwrap();
    assert!(!cli.global.verbose);
    for argv in
        [&["events", "--count", "0"][..], &["events", "--data", "x"], &["wait"], &["--then-wait", "a=b", "x"]]
    {
        assert!(parse(argv).unwrap_err().use_stderr(), "{argv:?}");
    }
}

#[test]
fn follow_options_and_job_wait() {
    let cli =
        parse(&["--follow", "--complete", "--cancel-on-interrupt", "blockdev-mirror", "device=d"]).unwrap();
    let f = &cli.global.follow;
    assert!(f.follow && f.complete && f.cancel_on_interrupt);
    let Some(Command::Qmp(words)) = cli.command else { panic!() };
    assert_eq!(words, ["blockdev-mirror", "device=d"]);
    let cli = parse(&["job", "wait", "j0", "--complete", "--timeout", "5"]).unwrap();
    let Some(Command::Job(job)) = cli.command else { panic!("{:?}", cli.command) };
    let follow::JobAction::Wait(wait) = job.action;
    assert_eq!(
        (wait.id.as_deref(), wait.complete, wait.timeout),
        (Some("j0"), true, Some(Duration::from_secs(5)))
    );
    assert!(matches!(parse(&["migration", "wait"]).unwrap().command, Some(Command::Migration(_))));
    // --follow and --then-wait both say what to wait for: one at a time.
    assert!(parse(&["--follow", "--then-wait", "STOP", "migrate"]).unwrap_err().use_stderr());
    assert!(parse(&["job"]).unwrap_err().use_stderr());
}

#[test]
fn timeout_zero_waits_forever_and_the_default_is_bounded() {
    let forever = parse(&["--timeout", "0", "x"]).unwrap();
    assert_eq!(forever.global.command_timeout().unwrap(), None);
    let given = parse(&["--timeout", "2.5", "x"]).unwrap();
    assert_eq!(
        given.global.command_timeout().unwrap(),
        Some((Duration::from_millis(2500), TimeoutSource::Option))
    );
}

#[test]
fn help_documents_exit_codes() {
    let help = Cli::command().render_long_help().to_string();
    for needle in [
        "Exit codes",
        "1  the server answered",
        "4  --timeout",
        "QMP_SOCKET",
        "QMP_PATH",
        "--args",
        "QMP_TIMEOUT",
        "60 s",
        "tls:HOST:PORT",
        "--tls-ca",
        "--wait",
        "--fd",
        "--pass-fd N",
        "3</path/to/disk.img",
        "qmp [OPTIONS] events",
        "qmp [OPTIONS] wait <EVENT>",
        "--then-wait",
        "--verbose",
        "RUST_LOG",
        "NO_COLOR",
        "--follow",
        "--complete",
        "--cancel-on-interrupt",
        "qmp job wait [JOB-ID]",
        "130  interrupted",
    ] {
        assert!(help.contains(needle), "{needle} missing from:\n{help}");
    }
}
