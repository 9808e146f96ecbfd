//! The part of QEMU's block permission system a client meets when two nodes use one file
//! node as their `file` child (found by running QEMU 7.2): a qcow2 node lets no other user
//! write or resize its file, and needs both itself unless it is read-only; a raw node that
//! shows a window of its file (an offset, a size) lets no one resize it. A node that would
//! break another user's needs, or whose needs another user does not allow, is refused with
//! QEMU's "Permission conflict" text, naming the newest such user.

use qmp_proto::QmpError;

use super::generic;

/// Writing to the child.
const WRITE: u8 = 1;
/// Resizing the child.
const RESIZE: u8 = 2;

/// What a node needs of its file child, and what it does not let others do with it.
#[derive(Clone, Copy, Default)]
pub(super) struct Perms {
    required: u8,
    unshared: u8,
}

impl Perms {
    /// For a node of `driver`; `windowed` for a raw node with an offset or a size.
    pub fn of(driver: &str, read_only: bool, windowed: bool) -> Perms {
        match driver {
            "qcow2" if read_only => Perms { required: 0, unshared: WRITE | RESIZE },
            "qcow2" => Perms { required: WRITE | RESIZE, unshared: WRITE | RESIZE },
            "raw" if windowed => Perms { required: 0, unshared: RESIZE },
            _ => Perms::default(),
        }
    }
}

/// Checks `new` (node `name`) against each other user of `file`, newest first: a
/// permission `user` needs and `new` does not share, then one `new` needs and `user` does
/// not share.
pub(super) fn check<'a>(
    file: &str,
    name: &str,
    new: Perms,
    users: impl IntoIterator<Item = (&'a str, Perms)>,
) -> Result<(), QmpError> {
    for (user, theirs) in users {
        if theirs.required & new.unshared != 0 {
            return Err(conflict(file, user, name, theirs.required & new.unshared));
        }
        if new.required & theirs.unshared != 0 {
            return Err(conflict(file, name, user, new.required & theirs.unshared));
        }
    }
    Ok(())
}

fn conflict(file: &str, requiring: &str, unsharing: &str, perms: u8) -> QmpError {
    let names: Vec<&str> = [(WRITE, "write"), (RESIZE, "resize")]
        .iter()
        .filter(|(p, _)| perms & p != 0)
        .map(|(_, n)| *n)
        .collect();
    generic(format!(
        "Permission conflict on node '{file}': permissions '{}' are both required by node '{requiring}' (uses node '{file}' as 'file' child) and unshared by node '{unsharing}' (uses node '{file}' as 'file' child).",
        names.join(", ")
    ))
}
