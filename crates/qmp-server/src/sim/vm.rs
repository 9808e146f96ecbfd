//! Simulated machine state: run states, devices, migration, and the human monitor.

use qmp_proto::{ErrorClass, QmpError};
use serde_json::{json, Value};

use super::block::Block;
use super::devices::{deleted_event, Devices};
use super::fdsets::Fds;
use super::migration::Migration;
use super::qom::Qom;
use crate::server::{Args, Events, Reply, VersionInfo};

/// Everything the simulator knows, behind one lock.
pub(crate) struct State {
    pub events: Events,
    pub version: VersionInfo,
    pub name: Option<String>,
    /// QEMU's `RunState` name: running, paused, postmigrate, ...
    pub run: &'static str,
    pub devices: Devices,
    pub migration: Migration,
    pub block: Block,
    /// The QOM tree (`qom-list` and friends).
    pub qom: Qom,
    /// Descriptors clients passed (`getfd`, `add-fd`).
    pub fds: Fds,
    /// The machine type simulated.
    pub machine: super::Machine,
    /// Told after every command: the idle clock sleeps until one may have started something.
    pub wake: std::sync::Arc<tokio::sync::Notify>,
}

fn generic(desc: impl Into<String>) -> QmpError {
    QmpError::new(ErrorClass::GenericError, desc)
}

impl State {
    pub fn new(events: Events, version: VersionInfo, like: super::Like, machine: super::Machine) -> Self {
        State {
            events,
            version,
            name: None,
            run: "running",
            devices: Devices::new(machine),
            migration: Migration::default(),
            block: Block::default(),
            qom: match like {
                super::Like::QemuSystem if machine == super::Machine::Pc => Qom::pc(),
                super::Like::QemuSystem => Qom::default(),
                super::Like::StorageDaemon => Qom::storage_daemon(),
            },
            fds: Fds::default(),
            machine,
            wake: std::sync::Arc::default(),
        }
    }

    /// Whether the VM runs (QEMU's `runstate_is_running`).
    pub fn running(&self) -> bool {
        self.run == "running"
    }

    pub fn query_status(&self) -> Reply {
        Ok(json!({"running": self.running(), "singlestep": false, "status": self.run}))
    }

    pub fn query_version(&self) -> Reply {
        let (major, minor, micro) = self.version.triple;
        Ok(json!({"qemu": {"major": major, "minor": minor, "micro": micro}, "package": self.version.package}))
    }

    pub fn query_name(&self) -> Reply {
        Ok(match &self.name {
            Some(n) => json!({"name": n}),
            None => json!({}),
        })
    }

    pub fn stop(&mut self) -> Reply {
        if self.run == "running" {
            self.run = "paused";
            self.events.emit("STOP", None);
        }
        Ok(json!({}))
    }

    pub fn cont(&mut self) -> Reply {
        match self.run {
            "running" => {}
            "shutdown" => return Err(generic("Resetting the Virtual Machine is required")),
            "inmigrate" => return Err(generic("Migration is not finished yet")),
            _ => {
                self.run = "running";
                self.events.emit("RESUME", None);
            }
        }
        Ok(json!({}))
    }

    pub fn system_reset(&mut self) -> Reply {
        self.events.emit("RESET", Some(json!({"guest": false, "reason": "host-qmp-system-reset"})));
        if self.run == "shutdown" {
            self.run = "running";
        }
        Ok(json!({}))
    }

    pub fn system_powerdown(&mut self) -> Reply {
        // As with `-machine none`, no guest answers the ACPI request.
        self.events.emit("POWERDOWN", None);
        Ok(json!({}))
    }

    pub fn quit(&mut self) -> Reply {
        self.events.emit("SHUTDOWN", Some(json!({"guest": false, "reason": "host-qmp-quit"})));
        self.run = "shutdown";
        Ok(json!({}))
    }

    pub fn device_add(&mut self, args: &Args) -> Reply {
        let block = &self.block;
        self.devices.add(args, |node| block.read_only(node), &mut self.qom)
    }

    pub fn device_del(&mut self, args: &Args) -> Reply {
        self.devices.del(args)
    }

    /// The human monitor: a few `info` commands, `help`, the run-state commands and the
    /// QOM ones, printed as QEMU prints them (errors as `Error: …` lines).
    pub fn hmp(&mut self, args: &Args) -> Reply {
        let line = args["command-line"].as_str().unwrap_or_default().trim();
        let words: Vec<&str> = line.split_whitespace().collect();
        let word = |i: usize| words.get(i).copied();
        // QEMU's text for a missing string argument.
        let missing = |command: &str| {
            format!("{command}: string expected\r\nTry \"help {command}\" for more information\r\n")
        };
        let printed = |r: Reply, print: &dyn Fn(Value) -> String| match r {
            Ok(v) => print(v),
            Err(e) => format!("Error: {}\r\n", e.desc),
        };
        let out = match (word(0).unwrap_or(""), word(1)) {
            ("", _) => String::new(),
            ("info", Some("status")) => {
                let state = if self.run == "running" { "running".to_string() } else { self.run.to_string() };
                format!("VM status: {state}\r\n")
            }
            ("info", Some("version")) => {
                let (a, b, c) = self.version.triple;
                format!("{a}.{b}.{c}{}\r\n", self.version.package)
            }
            ("info", Some("name")) => self.name.as_ref().map(|n| format!("{n}\r\n")).unwrap_or_default(),
            ("info", Some("kvm")) => "kvm support: disabled\r\n".to_string(),
            ("info", Some(other)) => format!("unknown command: 'info {other}'\r\n"),
            ("info", None) | ("help" | "?", Some("info")) => HMP_INFO_HELP.replace('\n', "\r\n"),
            ("help" | "?", _) => HMP_HELP.replace('\n', "\r\n"),
            ("stop" | "s", _) => self.stop().map(|_| String::new())?,
            ("cont" | "c", _) => self.cont().map(|_| String::new())?,
            ("system_reset", _) => self.system_reset().map(|_| String::new())?,
            ("system_powerdown", _) => self.system_powerdown().map(|_| String::new())?,
            // Without a path, QEMU prints the root's name.
            ("qom-list", None) => "/\r\n".to_string(),
            ("qom-list", Some(path)) => printed(self.qom.list(&hmp_args(&[("path", path)])), &|list| {
                let entries = list.as_array().map(Vec::as_slice).unwrap_or_default();
                entries
                    .iter()
                    .map(|p| format!("{} ({})\r\n", str_of(&p["name"]), str_of(&p["type"])))
                    .collect()
            }),
            ("qom-get", Some(path)) => match word(2) {
                Some(property) => {
                    let get = self.qom.get(&hmp_args(&[("path", path), ("property", property)]));
                    printed(get, &|v| {
                        let mut text = Vec::new();
                        crate::qjson::write_value(&mut text, &v);
                        format!("{}\r\n", String::from_utf8_lossy(&text))
                    })
                }
                None => missing("qom-get"),
            },
            ("qom-get", None) => missing("qom-get"),
            ("object_del", Some(id)) => {
                printed(self.qom.object_del(&hmp_args(&[("id", id)])), &|_| String::new())
            }
            ("object_del", None) => missing("object_del"),
            (other, _) => format!("unknown command: '{other}'\r\n"),
        };
        Ok(Value::String(out))
    }

    /// True while the clock has work: an unplug, a migration or a job under way.
    pub fn busy(&self) -> bool {
        self.devices.busy() || self.migration.busy() || self.block.busy()
    }

    /// Advances migration and device unplug by `dt` simulated seconds.
    pub fn tick(&mut self, dt: f64) {
        for gone in self.devices.tick() {
            self.qom.device_removed(&gone.path);
            self.events.emit("DEVICE_DELETED", Some(deleted_event(&gone)));
        }
        let events = self.events.clone();
        let run = &mut self.run;
        self.migration.tick(&events, dt, || {
            if *run == "running" {
                events.emit("STOP", None);
            }
            *run = "postmigrate";
        });
        let events = self.events.clone();
        self.block.tick(&events, dt);
    }
}

/// A QMP argument object of string members, for a human-monitor command's words.
fn hmp_args(members: &[(&str, &str)]) -> Args {
    members.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect()
}

/// A string member's text.
fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

const HMP_HELP: &str = "\
block_job_cancel [-f] device -- stop an active background block operation
block_job_complete device -- stop an active background block operation
block_job_pause device -- pause an active background block operation
block_job_resume device -- resume a paused background block operation
c|cont  -- resume emulation
help|? [cmd] -- show the help
info [subcommand] -- show various information about the system state
q|quit  -- quit the emulator
stop|s  -- stop emulation
system_powerdown  -- send system power down event
system_reset  -- reset the system
";

const HMP_INFO_HELP: &str = "\
info name  -- show the current VM name
info status  -- show the current VM status (running|paused)
info version  -- show the version of QEMU
";

/// A QMP value as QemuOpts takes it: a string as it is, a number in C's `%" PRId64 "` or
/// `%.17g`, a boolean as `on`/`off`; `None` for null, arrays and objects (QEMU drops them).
pub(crate) fn opt_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(if *b { "on" } else { "off" }.into()),
        Value::Number(n) => Some(match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (None, Some(u), _) => u.to_string(),
            (None, None, Some(f)) => format_g17(f),
            _ => n.to_string(),
        }),
        _ => None,
    }
}

/// `printf("%.17g", f)`: 17 significant digits, trailing zeros dropped, an exponent when
/// it is below -4 or from 17 up.
fn format_g17(f: f64) -> String {
    if !f.is_finite() {
        return if f.is_nan() {
            "nan".into()
        } else if f > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    let sci = format!("{f:.16e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: String| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    if (-4..17).contains(&exp) {
        let decimals = usize::try_from(16 - exp).unwrap_or(0);
        trim(format!("{f:.decimals$}"))
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa.to_string()), exp.abs())
    }
}
