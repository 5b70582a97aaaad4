//! Across instances: every push, room message and session end is appended to one
//! Redis stream, `<key_prefix>realtime`, which every instance reads with plain
//! `XREAD` (no consumer group: each instance needs every entry, for the sockets it
//! holds). A stream rather than pub/sub: it works the same on a Redis Cluster, and
//! an instance whose connection blips reads on from its last id instead of losing
//! what was sent meanwhile. `realtime.stream_max_len` bounds it.
//!
//! The instance that sends delivers to its own sockets at once and skips its own
//! entries when they come back.

use std::sync::Arc;
use std::time::Duration;

use redis::Value;

use super::hub::{Frame, Hub};
use super::metrics;
use crate::events::stream::entry::{Entry, read_reply};
use crate::kv::{KvError, RedisClient, RedisConnection};
use crate::shutdown::Shutdown;

/// How long one `XREAD` blocks; also how soon the reader sees shutdown.
const BLOCK: Duration = Duration::from_secs(2);
/// Entries taken per read.
const COUNT: usize = 1000;

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

/// The stream every instance appends to and reads.
pub(super) struct Fanout {
    client: RedisClient,
    connection: RedisConnection,
    key: String,
    origin: String,
    max_len: usize,
}

impl Fanout {
    /// The fan-out through `client`'s Redis; `origin` names this instance.
    pub(super) fn new(client: RedisClient, max_len: usize) -> Result<Self, KvError> {
        Ok(Fanout {
            connection: client.connection()?,
            key: format!("{}realtime", client.key_prefix()),
            origin: uuid::Uuid::new_v4().simple().to_string(),
            client,
            max_len,
        })
    }

    /// Appends `frame` for `target`, for the other instances.
    pub(super) async fn publish(&self, target: &Target, frame: &str) -> Result<(), KvError> {
        let mut connection = self.connection.clone();
        redis::cmd("XADD")
            .arg(&self.key)
            .arg("MAXLEN")
            .arg("~")
            .arg(self.max_len)
            .arg("*")
            .arg("o")
            .arg(&self.origin)
            .arg("t")
            .arg(target.encode())
            .arg("f")
            .arg(frame)
            .query_async::<Value>(&mut connection)
            .await?;
        Ok(())
    }

    /// Reads the other instances' entries into `hub` until `stop`.
    pub(super) async fn run(self: Arc<Self>, hub: Arc<Hub>, stop: Shutdown) {
        let mut connection = match self.client.dedicated_connection(BLOCK) {
            Ok(connection) => connection,
            Err(e) => {
                tracing::error!(error = %e, "realtime fan-out cannot connect; sockets get only this instance's pushes");
                return;
            }
        };
        let mut last: Option<String> = None;
        let mut failing = false;
        while !stop.is_shutting_down() {
            let read = async {
                let from = match &last {
                    Some(id) => id.clone(),
                    None => self.newest_id(&mut connection).await?,
                };
                let reply: Value = redis::cmd("XREAD")
                    .arg("COUNT")
                    .arg(COUNT)
                    .arg("BLOCK")
                    .arg(BLOCK.as_millis() as u64)
                    .arg("STREAMS")
                    .arg(&self.key)
                    .arg(&from)
                    .query_async(&mut connection)
                    .await?;
                Ok::<_, KvError>((from, read_reply(reply)?))
            };
            let outcome = tokio::select! {
                _ = stop.wait() => break,
                outcome = read => outcome,
            };
            match outcome {
                Ok((from, entries)) => {
                    if failing {
                        tracing::info!("realtime fan-out reads again");
                        failing = false;
                    }
                    last = Some(entries.last().map_or(from, |e| e.id.clone()));
                    for entry in &entries {
                        self.deliver(&hub, entry);
                    }
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, "realtime fan-out cannot read; retrying");
                        failing = true;
                    }
                    tokio::select! {
                        _ = stop.wait() => break,
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                }
            }
        }
    }

    /// The id reading starts after: the stream's newest, so an instance that starts
    /// does not replay what was sent before it.
    async fn newest_id(&self, connection: &mut RedisConnection) -> Result<String, KvError> {
        let reply: Value = redis::cmd("XREVRANGE")
            .arg(&self.key)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(connection)
            .await?;
        let newest = match reply {
            Value::Array(items) => items.into_iter().next(),
            _ => None,
        };
        Ok(match newest {
            Some(Value::Array(parts)) => match parts.into_iter().next() {
                Some(Value::BulkString(id)) => {
                    String::from_utf8(id).unwrap_or_else(|_| "0-0".into())
                }
                _ => "0-0".into(),
            },
            _ => "0-0".into(),
        })
    }

    fn deliver(&self, hub: &Hub, entry: &Entry) {
        if entry.field("o") == Some(self.origin.as_bytes()) {
            return;
        }
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
