//! Simulated outgoing migration: capabilities, progress in simulated time, and the
//! MIGRATION / MIGRATION_PASS events QEMU 7.2 sends when the `events` capability is on.

use std::os::fd::OwnedFd;

use qmp_proto::{ErrorClass, QmpError};
use serde_json::{json, Value};

use super::outgoing::{self, Refused, Target};
use crate::server::{Args, Events, Reply};

/// The simulated guest RAM that migration copies.
const RAM_BYTES: u64 = 128 << 20;
/// Migration bandwidth, in bytes per simulated second.
const RATE: f64 = 1024.0 * 1024.0 * 1024.0;

fn generic(desc: impl Into<String>) -> QmpError {
    QmpError::new(ErrorClass::GenericError, desc)
}

#[derive(Default)]
pub(crate) struct Migration {
    enabled: Vec<&'static str>,
    /// The current or last migration: status, bytes sent, simulated seconds.
    run: Option<(&'static str, f64, f64)>,
    /// Where the current migration writes; dropped (closed) when it ends.
    target: Option<Target>,
    /// Why the last migration failed, when QEMU keeps a reason (`error-desc`).
    error: Option<String>,
    /// `migrate-set-parameters`' values.
    pub params: super::migration_params::MigrationParams,
}

impl Migration {
    fn events_on(&self) -> bool {
        self.enabled.contains(&"events")
    }

    fn set_status(&mut self, ev: &Events, status: &'static str) {
        if let Some(run) = &mut self.run {
            run.0 = status;
        }
        if self.events_on() {
            ev.emit("MIGRATION", Some(json!({"status": status})));
        }
    }

    /// The migration ends as `failed`, with `error` as its `error-desc`.
    fn fail(&mut self, ev: &Events, error: Option<String>) {
        self.target = None;
        self.error = error;
        self.set_status(ev, "failed");
    }

    fn in_progress(&self) -> bool {
        matches!(self.run, Some((s, ..)) if matches!(s, "setup" | "active" | "cancelling"))
    }

    pub fn set_capabilities(&mut self, args: &Args) -> Reply {
        if self.in_progress() {
            return Err(generic("There's a migration process in progress"));
        }
        for cap in args["capabilities"].as_array().into_iter().flatten() {
            let name = cap["capability"].as_str().unwrap_or_default();
            let Some(&name) = super::qapi::migration_capabilities().iter().find(|c| **c == name) else {
                continue;
            };
            self.enabled.retain(|c| *c != name);
            if cap["state"] == Value::Bool(true) {
                self.enabled.push(name);
            }
        }
        Ok(json!({}))
    }

    pub fn query_capabilities(&self) -> Reply {
        let list: Vec<Value> = super::qapi::migration_capabilities()
            .iter()
            .map(|c| json!({"state": self.enabled.contains(c), "capability": c}))
            .collect();
        Ok(Value::Array(list))
    }

    /// `migrate` from run state `run`; `named_fd` takes the monitor's descriptor of a name
    /// (for `fd:`).
    pub fn start(
        &mut self,
        ev: &Events,
        args: &Args,
        run: &str,
        named_fd: impl FnOnce(&str) -> Option<OwnedFd>,
    ) -> Reply {
        if self.in_progress() {
            return Err(generic("There's a migration process in progress"));
        }
        match run {
            "inmigrate" => return Err(generic("Guest is waiting for an incoming migration")),
            "postmigrate" => {
                return Err(generic("Can't migrate the vm that was paused due to previous migration"))
            }
            _ => {}
        }
        let uri = args["uri"].as_str().unwrap_or_default();
        self.run = Some(("setup", 0.0, 0.0));
        self.error = None;
        // QEMU enters setup before it reads the URI.
        self.set_status(ev, "setup");
        match outgoing::open(uri, named_fd) {
            Ok(target) => {
                self.target = Some(target);
                Ok(json!({}))
            }
            Err(Refused::Protocol) => {
                self.fail(ev, None);
                Err(generic("Parameter 'uri' expects a valid migration protocol"))
            }
            Err(Refused::Other(desc)) => {
                self.fail(ev, Some(desc.clone()));
                Err(generic(desc))
            }
        }
    }

    pub fn cancel(&mut self, ev: &Events) -> Reply {
        if matches!(self.run, Some(("setup" | "active", ..))) {
            self.target = None;
            self.set_status(ev, "cancelling");
            self.set_status(ev, "cancelled");
        }
        Ok(json!({}))
    }

    pub fn query(&self) -> Reply {
        let Some((status, sent, elapsed)) = self.run else { return Ok(json!({})) };
        match (status, &self.error) {
            ("failed", Some(desc)) => return Ok(json!({"status": status, "error-desc": desc})),
            ("failed" | "cancelled" | "setup", _) => return Ok(json!({"status": status})),
            _ => {}
        }
        let transferred = sent as u64;
        let mbps = if elapsed > 0.0 { (sent * 8.0 / 1e6 / elapsed * 1000.0).round() / 1000.0 } else { 0.0 };
        let ram = json!({
            "total": RAM_BYTES, "remaining": RAM_BYTES - transferred.min(RAM_BYTES), "transferred": transferred,
            "duplicate": 0, "normal": transferred / 4096, "normal-bytes": transferred, "page-size": 4096,
            "mbps": mbps, "dirty-sync-count": 1, "postcopy-requests": 0, "multifd-bytes": 0,
            "pages-per-second": 0, "precopy-bytes": transferred, "downtime-bytes": 0, "postcopy-bytes": 0,
            "dirty-sync-missed-zero-copy": 0, "skipped": 0, "dirty-pages-rate": 0,
        });
        let mut info = json!({"status": status, "setup-time": 0, "total-time": (elapsed * 1000.0) as u64});
        match status {
            "completed" => info["downtime"] = json!(0),
            "active" => info["expected-downtime"] = json!(300),
            _ => {}
        }
        info["ram"] = ram;
        Ok(info)
    }

    /// True while a migration is under way (a tick moves it on).
    pub fn busy(&self) -> bool {
        matches!(self.run, Some(("setup" | "active", ..)))
    }

    /// Advances by `dt` simulated seconds; true when the migration completed now (the VM
    /// stops, and `stop` is called before the final events, as in QEMU).
    pub fn tick(&mut self, ev: &Events, dt: f64, stop: impl FnOnce()) {
        match self.run {
            Some(("setup", ..)) => {
                if let Some(Target::Connecting(rx)) = &self.target {
                    match rx.try_recv() {
                        Ok(Ok(fd)) => self.target = Some(Target::Open { _held: Some(fd) }),
                        Ok(Err(desc)) => return self.fail(ev, Some(desc)),
                        Err(std::sync::mpsc::TryRecvError::Empty) => return,
                        Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                            return self.fail(ev, Some("the connection could not be made".into()))
                        }
                    }
                }
                if self.events_on() {
                    ev.emit("MIGRATION_PASS", Some(json!({"pass": 1})));
                }
                self.set_status(ev, "active");
            }
            Some(("active", sent, elapsed)) => {
                let sent = (sent + RATE * dt).min(RAM_BYTES as f64);
                self.run = Some(("active", sent, elapsed + dt));
                if sent >= RAM_BYTES as f64 {
                    stop();
                    if self.events_on() {
                        ev.emit("MIGRATION_PASS", Some(json!({"pass": 2})));
                    }
                    self.target = None;
                    self.set_status(ev, "completed");
                }
            }
            _ => {}
        }
    }
}
