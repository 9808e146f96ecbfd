//! Descriptors clients pass: `getfd`/`closefd` (named, one list per monitor) and
//! `add-fd`/`remove-fd`/`query-fdsets` (numbered fd sets, shared by every monitor), kept as
//! QEMU 7.2 keeps them.
//!
//! What QEMU does that a client can see, found by running it:
//! - a named descriptor outlives its client: the next client of the same monitor can still
//!   `closefd` it; a second `getfd` of a name replaces (and closes) the first;
//! - `add-fd` without `fdset-id` takes the lowest free id; `query-fdsets` lists the sets from
//!   the highest id down and each set's descriptors oldest first, with `opaque` when given;
//! - `remove-fd` only marks descriptors; they are closed, and an emptied set dropped, when a
//!   set is cleaned up (by `remove-fd`, or for every set when the last client leaves), and
//!   only while the VM runs. Unmarked descriptors are closed too when no client is
//!   connected. Until then `query-fdsets` still lists marked ones.

use std::collections::{BTreeMap, HashMap};
use std::os::fd::{AsRawFd, OwnedFd};

use qmp_proto::{ErrorClass, QmpError};
use serde_json::{json, Map, Value};

use crate::server::{Args, Reply};
use crate::{Context, MonitorId};

const NO_FD: &str = "No file descriptor supplied via SCM_RIGHTS";

fn generic(desc: impl Into<String>) -> QmpError {
    QmpError::new(ErrorClass::GenericError, desc)
}

fn not_found(what: &str) -> QmpError {
    generic(format!("File descriptor named '{what}' not found"))
}

/// One descriptor of an fd set.
struct SetFd {
    fd: OwnedFd,
    opaque: Option<String>,
    /// `remove-fd` asked for it; closed at the next clean-up while running.
    removed: bool,
}

/// Named descriptors per monitor, fd sets, and how many clients are connected.
#[derive(Default)]
pub(crate) struct Fds {
    named: HashMap<MonitorId, Vec<(String, OwnedFd)>>,
    /// By id; each set's descriptors in the order added.
    sets: BTreeMap<i64, Vec<SetFd>>,
    clients: usize,
}

impl Fds {
    /// `getfd`: takes the descriptor the client passed, under `fdname`.
    pub fn getfd(&mut self, args: &Args, cx: &mut Context<'_>) -> Reply {
        let Some(fd) = cx.take_fd() else { return Err(generic(NO_FD)) };
        let name = args["fdname"].as_str().unwrap_or_default();
        if name.starts_with(|c: char| c.is_ascii_digit()) {
            // `fd` is closed on return, as QEMU closes it.
            return Err(generic("Parameter 'fdname' expects a name not starting with a digit"));
        }
        let named = self.named.entry(cx.monitor()).or_default();
        match named.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = fd,
            None => named.push((name.to_owned(), fd)),
        }
        Ok(Value::Object(Map::new()))
    }

    /// `closefd`.
    pub fn closefd(&mut self, args: &Args, cx: &mut Context<'_>) -> Reply {
        let name = args["fdname"].as_str().unwrap_or_default();
        let named = self.named.get_mut(&cx.monitor()).ok_or_else(|| not_found(name))?;
        let i = named.iter().position(|(n, _)| n == name).ok_or_else(|| not_found(name))?;
        named.swap_remove(i);
        Ok(Value::Object(Map::new()))
    }

    /// The monitor's descriptor named `name`, taken from it (`migrate` to `fd:NAME`).
    pub fn take_named(&mut self, monitor: MonitorId, name: &str) -> Option<OwnedFd> {
        let named = self.named.get_mut(&monitor)?;
        let i = named.iter().position(|(n, _)| n == name)?;
        Some(named.swap_remove(i).1)
    }

    /// `add-fd`: the passed descriptor into set `fdset-id` (or the lowest free id).
    pub fn add_fd(&mut self, args: &Args, cx: &mut Context<'_>) -> Reply {
        let Some(fd) = cx.take_fd() else { return Err(generic(NO_FD)) };
        let id = match args.get("fdset-id").and_then(Value::as_i64) {
            Some(id) if id < 0 => {
                return Err(generic("Parameter 'fdset-id' expects a non-negative value"));
            }
            Some(id) => id,
            None => (0..).find(|id| !self.sets.contains_key(id)).unwrap_or_default(),
        };
        let raw = fd.as_raw_fd();
        let opaque = args.get("opaque").and_then(Value::as_str).map(str::to_owned);
        self.sets.entry(id).or_default().push(SetFd { fd, opaque, removed: false });
        Ok(json!({"fd": raw, "fdset-id": id}))
    }

    /// `remove-fd`: marks one descriptor of a set, or the whole set, then cleans the set.
    pub fn remove_fd(&mut self, args: &Args, running: bool) -> Reply {
        let id = args["fdset-id"].as_i64().unwrap_or_default();
        let fd = args.get("fd").and_then(Value::as_i64);
        let what = || match fd {
            Some(fd) => format!("fdset-id:{id}, fd:{fd}"),
            None => format!("fdset-id:{id}"),
        };
        let Some(set) = self.sets.get_mut(&id) else { return Err(not_found(&what())) };
        match fd {
            Some(fd) => match set.iter_mut().find(|f| i64::from(f.fd.as_raw_fd()) == fd) {
                Some(f) => f.removed = true,
                None => return Err(not_found(&what())),
            },
            None => set.iter_mut().for_each(|f| f.removed = true),
        }
        if !clean(set, running, self.clients == 0) {
            self.sets.remove(&id);
        }
        Ok(Value::Object(Map::new()))
    }

    /// `query-fdsets`.
    pub fn query(&self) -> Reply {
        let sets = self.sets.iter().rev().map(|(id, fds)| {
            let fds: Vec<Value> = fds
                .iter()
                .map(|f| {
                    let mut info = json!({"fd": f.fd.as_raw_fd()});
                    if let Some(o) = &f.opaque {
                        info["opaque"] = json!(o);
                    }
                    info
                })
                .collect();
            json!({"fds": fds, "fdset-id": id})
        });
        Ok(Value::Array(sets.collect()))
    }

    /// A client connected to any monitor.
    pub fn connected(&mut self) {
        self.clients += 1;
    }

    /// A client left: with none left, every set is cleaned (while running).
    pub fn disconnected(&mut self, running: bool) {
        self.clients = self.clients.saturating_sub(1);
        let unused = self.clients == 0;
        self.sets.retain(|_, set| clean(set, running, unused));
    }

    /// A monitor ended: its named descriptors are closed.
    pub fn monitor_closed(&mut self, monitor: MonitorId) {
        self.named.remove(&monitor);
    }
}

/// QEMU's fd set clean-up: closes what was removed (and, with no client connected,
/// everything), only while running. Whether the set is kept (it is dropped once empty).
fn clean(set: &mut Vec<SetFd>, running: bool, unused: bool) -> bool {
    if running {
        set.retain(|f| !(f.removed || unused));
    }
    !set.is_empty()
}
