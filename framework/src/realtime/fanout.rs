//! Across instances: every push, room message and session end is appended to one
//! [`Broadcast`] stream, `<key_prefix>realtime`, which every instance reads in full
//! (each needs every entry, for the sockets it holds); `realtime.stream_max_len`
//! bounds it. The instance that sends delivers to its own sockets at once; the
//! stream skips its own entries when they come back.

use std::sync::Arc;

use super::hub::{Frame, Hub};
use super::metrics;
use crate::kv::stream_entry::Entry;
use crate::kv::{Broadcast, KvError, RedisClient};
use crate::shutdown::Shutdown;

/// Who a frame is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    /// Every socket of a user.
    User(i64),
    /// Every socket in a room.
    Room(String),
    /// Close a user's sockets of one session, or of all (`None`).
    EndSessions(i64, Option<String>),
}

impl Target {
    fn encode(&self) -> String {
        match self {
            Target::User(user) => format!("u:{user}"),
            Target::Room(room) => format!("r:{room}"),
            Target::EndSessions(user, None) => format!("s:{user}"),
            Target::EndSessions(user, Some(sid)) => format!("s:{user}:{sid}"),
        }
    }

    fn decode(text: &str) -> Option<Target> {
        let (kind, rest) = text.split_once(':')?;
        match kind {
            "u" => rest.parse().ok().map(Target::User),
            "r" => Some(Target::Room(rest.to_owned())),
            "s" => Some(match rest.split_once(':') {
                Some((user, sid)) => Target::EndSessions(user.parse().ok()?, Some(sid.to_owned())),
                None => Target::EndSessions(rest.parse().ok()?, None),
            }),
            _ => None,
        }
    }

    /// Delivers `frame` (nothing for session ends) to this instance's sockets.
    pub(super) fn deliver(&self, hub: &Hub, frame: &Frame) -> usize {
        match self {
            Target::User(user) => hub.to_user(*user, frame),
            Target::Room(room) => hub.to_room(room, frame),
            Target::EndSessions(user, sid) => hub.end_sessions(*user, sid.as_deref()),
        }
    }
}

/// The realtime stream, `<key_prefix>realtime`.
pub(super) struct Fanout {
    stream: Broadcast,
}

impl Fanout {
    /// The fan-out through `client`'s Redis.
    pub(super) fn new(client: &RedisClient, max_len: usize) -> Result<Self, KvError> {
        Ok(Fanout {
            stream: Broadcast::new(client, "realtime", max_len)?,
        })
    }

    /// Appends `frame` for `target`, for the other instances.
    pub(super) async fn publish(&self, target: &Target, frame: &str) -> Result<(), KvError> {
        let target = target.encode();
        self.stream
            .publish(&[("t", target.as_bytes()), ("f", frame.as_bytes())])
            .await
    }

    /// Reads the other instances' entries into `hub` until `stop`.
    pub(super) async fn run(self: Arc<Self>, hub: Arc<Hub>, stop: Shutdown) {
        // Pushes missed while Redis was away are gone: pushes are not stored.
        self.stream
            .run(stop, |entry| deliver(&hub, entry), || {})
            .await;
    }
}

fn deliver(hub: &Hub, entry: &Entry) {
    let target = entry
        .field("t")
        .and_then(|t| std::str::from_utf8(t).ok())
        .and_then(Target::decode);
    let frame = entry.field("f").and_then(|f| std::str::from_utf8(f).ok());
    let (Some(target), Some(frame)) = (target, frame) else {
        tracing::warn!(id = %entry.id, "malformed realtime stream entry skipped");
        return;
    };
    target.deliver(hub, &Frame::from(frame));
    if let Some(appended) = entry.appended_at_ms() {
        let age_ms = (chrono::Utc::now().timestamp_millis() - appended).max(0);
        metrics::fanout_latency().observe(age_ms as f64 / 1000.0);
    }
}

#[cfg(test)]
mod tests {
    use super::Target;

    #[test]
    fn targets_survive_the_stream() {
        for target in [
            Target::User(42),
            Target::Room("live:1.a-b_c".into()),
            Target::EndSessions(7, None),
            Target::EndSessions(7, Some("abc-DEF_1".into())),
        ] {
            assert_eq!(Target::decode(&target.encode()), Some(target));
        }
        for bad in ["", "x:1", "u:abc", "s:", "s:x:y", "u"] {
            assert_eq!(Target::decode(bad), None, "{bad}");
        }
    }
}
