//! The simulator's command table: which commands it implements and the state method that
//! answers each. Their declarations (arguments, return, `allow-oob`) are QEMU 7.2's, derived
//! from the QAPI facts by [`qapi::command`], so argument errors match.

use std::sync::{Arc, Mutex, OnceLock};

use qmp_proto::{ErrorClass, QmpError};
use serde_json::{json, Value};

use qmp::generated::facts::{STORAGE_DAEMON_COMMANDS, STORAGE_DAEMON_EVENTS};

use super::block::{Block, JobKind, JobVerbs};
use super::machine_queries;
use super::qapi;
use super::transaction::{bitmap_command, transaction};
use super::vm::State;
use super::{lock, Like, Shared, SimOptions};
use crate::fds::{ClientEvent, Context};
use crate::server::{Args, CommandSpec, Events, Reply, Server, ServerBuilder, VersionInfo};

/// The monitor's chardev, the one yank instance QEMU lists with `-qmp`.
const MONITOR_ID: &str = "compat_monitor0";

fn generic(desc: &str) -> QmpError {
    QmpError::new(ErrorClass::GenericError, desc)
}

/// What the registrations need: the state, and which program's commands are offered.
struct Ctx<'a> {
    state: &'a Shared,
    like: Like,
}

impl Ctx<'_> {
    /// Whether the program simulated has `command` (the storage daemon has fewer).
    fn offers(&self, command: &str) -> bool {
        match self.like {
            Like::QemuSystem => true,
            Like::StorageDaemon => STORAGE_DAEMON_COMMANDS.binary_search(&command).is_ok(),
        }
    }
}

/// Registers a command answered by `f` on the locked state, if the program simulated has it.
fn on(
    b: ServerBuilder,
    cx: &Ctx,
    spec: CommandSpec,
    f: impl Fn(&mut State, &Args) -> Reply + Send + Sync + 'static,
) -> ServerBuilder {
    if !cx.offers(spec.name()) {
        return b;
    }
    let state = cx.state.clone();
    b.command(spec, move |args| {
        let mut state = lock(&state);
        let reply = f(&mut state, &args);
        state.wake.notify_one();
        reply
    })
}

/// [`on`] for a command that needs its connection: the descriptors passed, the monitor.
fn on_cx(
    b: ServerBuilder,
    cx: &Ctx,
    spec: CommandSpec,
    f: fn(&mut State, &Args, &mut Context<'_>) -> Reply,
) -> ServerBuilder {
    if !cx.offers(spec.name()) {
        return b;
    }
    let state = cx.state.clone();
    b.command_with_context(spec, move |args, conn| {
        let mut state = lock(&state);
        let reply = f(&mut state, &args, conn);
        // As for every command: it may have started something the clock moves on.
        state.wake.notify_one();
        reply
    })
}

/// Builds the simulator's server and its shared state.
pub(crate) fn build(options: &SimOptions) -> (Server, Shared) {
    let (ma, mi, mc) = options.version;
    let version = VersionInfo { triple: options.version, package: options.package.clone() };
    // `quit` shuts the server down, which exists only after `build`.
    let quit_server: Arc<OnceLock<Server>> = Arc::default();
    let mut b = Server::builder().version(ma, mi, mc, &options.package);
    let state = Arc::new(Mutex::new(State::new(b.events(), version, options.like, options.machine)));
    let st = &Ctx { state: &state, like: options.like };
    b = on(b, st, qapi::command("query-status"), |s, _| s.query_status());
    b = on(b, st, qapi::command("query-version"), |s, _| s.query_version());
    b = on(b, st, qapi::command("query-name"), |s, _| s.query_name());
    b = on(b, st, qapi::command("stop"), |s, _| s.stop());
    b = on(b, st, qapi::command("cont"), |s, _| s.cont());
    b = on(b, st, qapi::command("system_reset"), |s, _| s.system_reset());
    b = on(b, st, qapi::command("system_powerdown"), |s, _| s.system_powerdown());
    {
        let state = state.clone();
        let server = quit_server.clone();
        b = b.command(qapi::command("quit"), move |_| {
            let reply = lock(&state).quit();
            if let Some(server) = server.get() {
                server.shutdown();
            }
            reply
        });
    }
    b = on(b, st, qapi::command("human-monitor-command"), |s, a| s.hmp(a));
    b = on(
        b,
        st,
        // QEMU declares device_add with `'gen': false`: it takes any property of the device
        // and checks none of them by type (the model has no `gen`).
        qapi::command("device_add").unchecked(),
        |s, a| s.device_add(a),
    );
    b = on(b, st, qapi::command("device_del"), |s, a| s.device_del(a));
    b = on_cx(b, st, qapi::command("migrate"), |s, a, cx| {
        let ev = s.events.clone();
        let monitor = cx.monitor();
        let fds = &mut s.fds;
        s.migration.start(&ev, a, s.run, |name| fds.take_named(monitor, name))
    });
    b = on(b, st, qapi::command("migrate_cancel"), |s, _| {
        let ev = s.events.clone();
        s.migration.cancel(&ev)
    });
    b = on(b, st, qapi::command("query-migrate"), |s, _| s.migration.query());
    b = on(b, st, qapi::command("migrate-set-capabilities"), |s, a| s.migration.set_capabilities(a));
    b = on(b, st, qapi::command("query-migrate-capabilities"), |s, _| s.migration.query_capabilities());
    b = on(b, st, qapi::command("query-migrate-parameters"), |s, _| s.migration.params.query());
    b = on(b, st, qapi::command("migrate-set-parameters"), |s, a| s.migration.params.set(a));
    b = on(b, st, qapi::command("migrate-pause"), |_, _| {
        Err(generic("migrate-pause is currently only supported during postcopy-active state"))
    });
    b = on(b, st, qapi::command("yank"), |_, a| {
        let known = |i: &Value| i["type"] == "chardev" && i["id"] == MONITOR_ID;
        match a["instances"].as_array() {
            Some(list) if list.iter().all(known) => Ok(Value::Object(Default::default())),
            _ => Err(QmpError::new(ErrorClass::DeviceNotFound, "Instance not found")),
        }
    });
    b = on(b, st, qapi::command("query-yank"), |_, _| Ok(json!([{"type": "chardev", "id": MONITOR_ID}])));
    b = on(b, st, qapi::blockdev_add(), |s, a| s.block.add(a));
    b = on(b, st, qapi::command("blockdev-del"), |s, a| {
        let name = a["node-name"].as_str().unwrap_or_default();
        if s.devices.holds_node(name) {
            return Err(QmpError::new(ErrorClass::GenericError, format!("Node {name} is in use")));
        }
        s.block.del(a)
    });
    b = on(b, st, qapi::command("query-named-block-nodes"), |s, a| s.block.named_nodes(a));
    b = on(b, st, qapi::command("query-block"), |s, _| {
        // Only devices' backends: the simulator has no -drive, so every backend is anonymous.
        let list = s.devices.backends().into_iter().map(|b| {
            let mut v = serde_json::Map::new();
            v.insert("device".into(), json!(""));
            v.insert("qdev".into(), json!(b.qdev));
            v.insert("type".into(), json!("unknown"));
            v.insert("removable".into(), json!(false));
            v.insert("locked".into(), json!(false));
            if let Some(inserted) = s.block.inserted(b.node) {
                v.insert("inserted".into(), inserted);
            }
            if b.io_status {
                v.insert("io-status".into(), json!("ok"));
            }
            Value::Object(v)
        });
        Ok(Value::Array(list.collect()))
    });
    let stream = qapi::command("block-stream");
    b = on(b, st, stream, |s, a| {
        let ev = s.events.clone();
        s.block.start_job(&ev, JobKind::Stream, a)
    });
    let commit = qapi::command("block-commit");
    b = on(b, st, commit, |s, a| {
        let ev = s.events.clone();
        s.block.start_job(&ev, JobKind::Commit, a)
    });
    let mirror = qapi::command("blockdev-mirror");
    b = on(b, st, mirror, |s, a| {
        let ev = s.events.clone();
        s.block.start_job(&ev, JobKind::Mirror, a)
    });
    b = on(b, st, qapi::command("block-job-set-speed"), |s, a| s.block.set_speed(a));
    // The block-job-* verbs and their job-* twins, which differ in how they name the job.
    type Verb = fn(&mut Block, &Events, JobVerbs, &Args) -> Reply;
    let table: [(&str, Verb); 6] = [
        ("cancel", Block::cancel),
        ("complete", |block, _, verbs, a| block.complete(verbs, a)),
        ("pause", Block::pause),
        ("resume", Block::resume),
        ("finalize", Block::finalize),
        ("dismiss", Block::dismiss),
    ];
    for (verbs, prefix) in [(JobVerbs::Block, "block-job-"), (JobVerbs::Job, "job-")] {
        for (name, verb) in table {
            b = on(b, st, qapi::command(&format!("{prefix}{name}")), move |s, a| {
                let ev = s.events.clone();
                verb(&mut s.block, &ev, verbs, a)
            });
        }
    }
    b = on(b, st, qapi::command("query-block-jobs"), |s, _| s.block.query_block_jobs());
    b = on(b, st, qapi::command("query-jobs"), |s, _| s.block.query_jobs());
    b = on(b, st, qapi::command("block-dirty-bitmap-add"), |s, a| {
        bitmap_command(&mut s.block, "block-dirty-bitmap-add", a)
    });
    b = on(b, st, qapi::command("block-dirty-bitmap-remove"), |s, a| {
        bitmap_command(&mut s.block, "block-dirty-bitmap-remove", a)
    });
    b = on(b, st, qapi::command("block-dirty-bitmap-clear"), |s, a| {
        bitmap_command(&mut s.block, "block-dirty-bitmap-clear", a)
    });
    b = on(b, st, qapi::command("block-dirty-bitmap-enable"), |s, a| {
        bitmap_command(&mut s.block, "block-dirty-bitmap-enable", a)
    });
    b = on(b, st, qapi::command("block-dirty-bitmap-disable"), |s, a| {
        bitmap_command(&mut s.block, "block-dirty-bitmap-disable", a)
    });
    b = on(b, st, qapi::command("transaction"), |s, a| transaction(&mut s.block, a));
    for &(name, answer) in machine_queries::CONSTANT {
        b = on(b, st, qapi::command(name), move |_, _| answer());
    }
    for &(name, answer) in machine_queries::OF_MACHINE {
        b = on(b, st, qapi::command(name), move |s, _| answer(s.machine));
    }
    b = on(b, st, qapi::command("query-iothreads"), |s, _| machine_queries::iothreads(&s.qom));
    b = on(b, st, qapi::command("query-memdev"), |s, _| machine_queries::memdevs(&s.qom));
    b = on(b, st, qapi::command("qom-list"), |s, a| s.qom.list(a));
    b = on(b, st, qapi::command("qom-get"), |s, a| s.qom.get(a));
    b = on(b, st, qapi::command("qom-set"), |s, a| s.qom.set(a));
    b = on(b, st, qapi::object_add(), |s, a| s.qom.object_add(a));
    b = on(b, st, qapi::command("object-del"), |s, a| s.qom.object_del(a));
    b = on(b, st, qapi::command("qom-list-types"), |s, a| s.qom.types().list_types(a));
    b = on(b, st, qapi::command("qom-list-properties"), |s, a| s.qom.types().list_properties(a));
    b = on(b, st, qapi::command("device-list-properties"), |s, a| s.qom.types().device_list_properties(a));
    b = on_cx(b, st, qapi::command("getfd"), |s, a, cx| s.fds.getfd(a, cx));
    b = on_cx(b, st, qapi::command("closefd"), |s, a, cx| s.fds.closefd(a, cx));
    b = on_cx(b, st, qapi::command("add-fd"), |s, a, cx| s.fds.add_fd(a, cx));
    b = on(b, st, qapi::command("remove-fd"), |s, a| {
        let running = s.running();
        s.fds.remove_fd(a, running)
    });
    b = on(b, st, qapi::command("query-fdsets"), |s, _| s.fds.query());
    {
        // QEMU keeps named descriptors per monitor and cleans fd sets as clients leave.
        let state = state.clone();
        b = b.on_client(move |event| {
            let mut s = lock(&state);
            let running = s.running();
            match event {
                ClientEvent::Connected(_) => s.fds.connected(),
                ClientEvent::Disconnected(_) => s.fds.disconnected(running),
                ClientEvent::MonitorClosed(monitor) => s.fds.monitor_closed(monitor),
            }
        });
    }
    for (name, data) in qapi::events() {
        if options.like == Like::QemuSystem || STORAGE_DAEMON_EVENTS.binary_search(&name).is_ok() {
            b = b.event(name, data);
        }
    }
    let server = b.build();
    let _ = quit_server.set(server.clone());
    (server, state)
}
