//! What both drivers do with a reply the core placed nowhere: log it. (The routing itself, by
//! the id each call was sent with, is the core's: [`qmp_proto::client`].)

use qmp_proto::client::Unplaced;

/// Logs a reply that completes no call: one whose caller gave up (timed out or dropped its
/// future) at debug level, one with an id we never sent, or none, as a warning.
pub(crate) fn log_unplaced(reply: &Unplaced) {
    match reply {
        Unplaced::GaveUp { id } => tracing::debug!(id, "dropping a reply whose caller gave up"),
        Unplaced::Foreign(resp) => {
            tracing::warn!(id = ?resp.id, ?resp, "dropping a reply with an id this client never sent")
        }
        other => tracing::warn!(?other, "dropping a reply no call takes"),
    }
}
