//! A Redis stream every instance appends to and every instance reads in full: how
//! one instance tells all the others something (a push for their sockets, a cached
//! answer to forget).
//!
//! Plain `XREAD`, no consumer group, since each instance needs every entry. A
//! stream rather than pub/sub: it works the same on a Redis Cluster (one key), and
//! an instance whose connection blips reads on from its last id instead of losing
//! what was sent meanwhile. Each entry carries its sender, so an instance skips its
//! own entries when they come back; `max_len` bounds the stream (approximately).

use std::time::Duration;

use redis::Value;

use super::stream_entry::{Entry, range_reply, read_reply};
use super::{KvError, RedisClient, RedisConnection};
use crate::shutdown::Shutdown;

/// How long one `XREAD` blocks; also how soon the reader sees shutdown.
const BLOCK: Duration = Duration::from_secs(2);
/// Entries taken per read.
const COUNT: usize = 1000;
/// The field naming the sending instance.
const ORIGIN: &str = "o";

/// One broadcast stream, `<key_prefix><name>`.
pub struct Broadcast {
    client: RedisClient,
    connection: RedisConnection,
    key: String,
    origin: String,
    max_len: usize,
}

impl std::fmt::Debug for Broadcast {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broadcast").field("key", &self.key).finish()
    }
}

impl Broadcast {
    /// The stream `name` on `client`'s Redis, kept to about `max_len` entries.
    pub fn new(client: &RedisClient, name: &str, max_len: usize) -> Result<Self, KvError> {
        Ok(Broadcast {
            connection: client.connection()?,
            key: format!("{}{name}", client.key_prefix()),
            origin: uuid::Uuid::new_v4().simple().to_string(),
            client: client.clone(),
            max_len,
        })
    }

    /// Appends an entry of `fields` for the other instances.
    pub async fn publish(&self, fields: &[(&str, &[u8])]) -> Result<(), KvError> {
        let mut command = redis::cmd("XADD");
        command
            .arg(&self.key)
            .arg("MAXLEN")
            .arg("~")
            .arg(self.max_len)
            .arg("*")
            .arg(ORIGIN)
            .arg(&self.origin);
        for (name, value) in fields {
            command.arg(*name).arg(*value);
        }
        command
            .query_async::<Value>(&mut self.connection.clone())
            .await?;
        Ok(())
    }

    /// Hands every other instance's entry appended after the start to `on_entry`,
    /// in order, until `stop`. After a spell of failed reads (Redis unreachable)
    /// `on_gap` is called once reading works again: what others sent meanwhile may
    /// not have reached the stream, so a cache fed by it should be dropped.
    pub async fn run(
        &self,
        stop: Shutdown,
        mut on_entry: impl FnMut(&Entry),
        mut on_gap: impl FnMut(),
    ) {
        let mut connection = match self.client.dedicated_connection(BLOCK) {
            Ok(connection) => connection,
            Err(e) => {
                tracing::error!(stream = %self.key, error = %e, "broadcast reader cannot connect; this instance hears nothing from the others");
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
                        tracing::info!(stream = %self.key, "broadcast reader reads again");
                        failing = false;
                        on_gap();
                    }
                    last = Some(entries.last().map_or(from, |e| e.id.clone()));
                    for entry in entries.iter().filter(|e| !self.is_own(e)) {
                        on_entry(entry);
                    }
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(stream = %self.key, error = %e, "broadcast reader cannot read; retrying");
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

    fn is_own(&self, entry: &Entry) -> bool {
        entry.field(ORIGIN) == Some(self.origin.as_bytes())
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
        Ok(range_reply(reply)?
            .into_iter()
            .next()
            .map_or_else(|| "0-0".to_owned(), |entry| entry.id))
    }
}
