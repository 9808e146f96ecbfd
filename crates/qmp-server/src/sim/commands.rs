//! The simulator's command table: each command's declared arguments (as QEMU 7.2 declares
//! them, so argument errors match) and the state method that answers it.

use std::sync::{Arc, Mutex, OnceLock};

use qmp_proto::{ErrorClass, QmpError};
use serde_json::{json, Value};

use super::block::JobKind;
use super::qapi;
use super::vm::State;
use super::{lock, Shared, SimOptions};
use crate::schema::{Struct, Ty};
use crate::server::{Args, CommandSpec, Reply, Server, ServerBuilder, VersionInfo};

/// The monitor's chardev, the one yank instance QEMU lists with `-qmp`.
const MONITOR_ID: &str = "compat_monitor0";

fn generic(desc: &str) -> QmpError {
    QmpError::new(ErrorClass::GenericError, desc)
}

fn empty(name: &str) -> CommandSpec {
    CommandSpec::new(name).returns(Ty::object(Struct::new()))
}

/// Registers a command answered by `f` on the locked state.
fn on(
    b: ServerBuilder,
    state: &Shared,
    spec: CommandSpec,
    f: fn(&mut State, &Args) -> Reply,
) -> ServerBuilder {
    let state = state.clone();
    b.command(spec, move |args| f(&mut lock(&state), &args))
}

/// Builds the simulator's server and its shared state.
pub(crate) fn build(options: &SimOptions) -> (Server, Shared) {
    let (ma, mi, mc) = options.version;
    let version = VersionInfo { triple: options.version, package: options.package.clone() };
    // `quit` shuts the server down, which exists only after `build`.
    let quit_server: Arc<OnceLock<Server>> = Arc::default();
    let mut b = Server::builder().version(ma, mi, mc, &options.package);
    let state = Arc::new(Mutex::new(State::new(b.events(), version)));
    let st = &state;
    b = on(b, st, CommandSpec::new("query-status"), |s, _| s.query_status());
    b = on(b, st, CommandSpec::new("query-version"), |s, _| s.query_version());
    b = on(b, st, CommandSpec::new("query-name"), |s, _| s.query_name());
    b = on(b, st, empty("stop"), |s, _| s.stop());
    b = on(b, st, empty("cont"), |s, _| s.cont());
    b = on(b, st, empty("system_reset"), |s, _| s.system_reset());
    b = on(b, st, empty("system_powerdown"), |s, _| s.system_powerdown());
    {
        let state = state.clone();
        let server = quit_server.clone();
        b = b.command(empty("quit"), move |_| {
            let reply = lock(&state).quit();
            if let Some(server) = server.get() {
                server.shutdown();
            }
            reply
        });
    }
    b = on(
        b,
        st,
        CommandSpec::new("human-monitor-command")
            .arg("command-line", Ty::Str)
            .opt("cpu-index", Ty::Int)
            .returns(Ty::Str),
        |s, a| s.hmp(a),
    );
    b = on(
        b,
        st,
        empty("device_add").arg("driver", Ty::Str).opt("bus", Ty::Str).opt("id", Ty::Str).allow_extra(),
        |s, a| s.device_add(a),
    );
    b = on(b, st, empty("device_del").arg("id", Ty::Str), |s, a| s.device_del(a));
    b = on(b, st, qapi::migrate(empty("migrate")), |s, a| {
        let ev = s.events.clone();
        s.migration.start(&ev, a)
    });
    b = on(b, st, empty("migrate_cancel"), |s, _| {
        let ev = s.events.clone();
        s.migration.cancel(&ev)
    });
    b = on(b, st, CommandSpec::new("query-migrate"), |s, _| s.migration.query());
    b = on(b, st, qapi::migrate_set_capabilities(empty("migrate-set-capabilities")), |s, a| {
        s.migration.set_capabilities(a)
    });
    b = on(b, st, CommandSpec::new("query-migrate-capabilities"), |s, _| s.migration.query_capabilities());
    b = on(b, st, empty("migrate-pause").allow_oob(), |_, _| {
        Err(generic("migrate-pause is currently only supported during postcopy-active state"))
    });
    let yank = Struct::new()
        .member("type", Ty::enumeration("YankInstanceType", ["block-node", "chardev", "migration"]))
        .union(
            "type",
            vec![
                ("block-node".into(), Struct::new().member("node-name", Ty::Str)),
                ("chardev".into(), Struct::new().member("id", Ty::Str)),
                ("migration".into(), Struct::new()),
            ],
        );
    b = on(b, st, empty("yank").arg("instances", Ty::array(Ty::object(yank))).allow_oob(), |_, a| {
        let known = |i: &Value| i["type"] == "chardev" && i["id"] == MONITOR_ID;
        match a["instances"].as_array() {
            Some(list) if list.iter().all(known) => Ok(Value::Object(Default::default())),
            _ => Err(QmpError::new(ErrorClass::DeviceNotFound, "Instance not found")),
        }
    });
    b = on(b, st, CommandSpec::new("query-yank").allow_oob(), |_, _| {
        Ok(json!([{"type": "chardev", "id": MONITOR_ID}]))
    });
    b = on(b, st, empty("blockdev-add").args(qapi::blockdev_add_args()), |s, a| s.block.add(a));
    b = on(b, st, empty("blockdev-del").arg("node-name", Ty::Str), |s, a| s.block.del(a));
    b = on(b, st, CommandSpec::new("query-named-block-nodes").opt("flat", Ty::Bool), |s, _| {
        s.block.named_nodes()
    });
    b = on(b, st, CommandSpec::new("query-block"), |_, _| Ok(Value::Array(vec![])));
    let stream = qapi::block_stream(empty("block-stream"));
    b = on(b, st, stream, |s, a| {
        let ev = s.events.clone();
        s.block.start_job(&ev, JobKind::Stream, a)
    });
    let commit = qapi::block_commit(empty("block-commit"));
    b = on(b, st, commit, |s, a| {
        let ev = s.events.clone();
        s.block.start_job(&ev, JobKind::Commit, a)
    });
    let mirror = qapi::blockdev_mirror(empty("blockdev-mirror"));
    b = on(b, st, mirror, |s, a| {
        let ev = s.events.clone();
        s.block.start_job(&ev, JobKind::Mirror, a)
    });
    b = on(b, st, empty("block-job-cancel").arg("device", Ty::Str).opt("force", Ty::Bool), |s, a| {
        let ev = s.events.clone();
        s.block.cancel(&ev, a)
    });
    b = on(b, st, empty("block-job-complete").arg("device", Ty::Str), |s, a| s.block.complete(a));
    b = on(b, st, empty("block-job-pause").arg("device", Ty::Str), |s, a| {
        let ev = s.events.clone();
        s.block.pause(&ev, a)
    });
    b = on(b, st, empty("block-job-resume").arg("device", Ty::Str), |s, a| {
        let ev = s.events.clone();
        s.block.resume(&ev, a)
    });
    b = on(b, st, empty("block-job-set-speed").arg("device", Ty::Str).arg("speed", Ty::Int), |s, a| {
        s.block.set_speed(a)
    });
    b = on(b, st, empty("job-dismiss").arg("id", Ty::Str), |s, a| {
        let ev = s.events.clone();
        s.block.dismiss(&ev, a)
    });
    b = on(b, st, CommandSpec::new("query-block-jobs"), |s, _| s.block.query_block_jobs());
    b = on(b, st, CommandSpec::new("query-jobs"), |s, _| s.block.query_jobs());
    for (name, data) in qapi::events() {
        b = b.event(name, data);
    }
    let server = b.build();
    let _ = quit_server.set(server.clone());
    (server, state)
}
