//! Stream entries as Redis sends them, read straight from the reply's values; public
//! for other readers of Redis streams in the app (the WebSocket relay's fan-out).
//!
//! The redis crate's stream replies copy every entry into a `HashMap` of
//! `redis::Value`s; on the relay's hot path (each order's events, read by each
//! group) that was most of the consumer's own CPU. An event's entry has three
//! fields, read here in place.

use redis::Value;

use crate::events::Event;
use crate::kv::KvError;

/// One stream entry: its id and fields, in order.
pub struct Entry {
    /// The entry's id, `<ms>-<seq>`.
    pub id: String,
    /// Field names and values.
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Entry {
    /// The value of field `name`.
    pub fn field(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(field, _)| field == name.as_bytes())
            .map(|(_, value)| value.as_slice())
    }

    /// The event the entry carries, or why it carries none.
    pub(super) fn decode(&self) -> Result<Event, String> {
        let text = |name: &'static str| {
            let bytes = self.field(name).ok_or(format!("no {name} field"))?;
            std::str::from_utf8(bytes).map_err(|_| format!("{name} is not UTF-8"))
        };
        let id = text("id")?.to_owned();
        let topic = text("topic")?.to_owned();
        let payload = serde_json::from_slice(self.field("payload").ok_or("no payload field")?)
            .map_err(|e| format!("payload: {e}"))?;
        Ok(Event { id, topic, payload })
    }

    /// Milliseconds since the epoch at which the entry was appended (its id's first
    /// part).
    pub fn appended_at_ms(&self) -> Option<i64> {
        self.id.split('-').next()?.parse().ok()
    }
}

fn malformed(what: &str) -> KvError {
    KvError(format!("unexpected Redis reply to {what}"))
}

fn bytes(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) => Some(text.into_bytes()),
        _ => None,
    }
}

fn string(value: Value) -> Option<String> {
    String::from_utf8(bytes(value)?).ok()
}

/// A list of entries (`[[id, [field, value, ...]], ...]`). An entry deleted while
/// pending comes with no fields (nil); it is skipped, as XAUTOCLAIM reports it
/// separately.
fn entries(value: Value, what: &str) -> Result<Vec<Entry>, KvError> {
    let Value::Array(items) = value else {
        return Err(malformed(what));
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::Array(parts) = item else {
            return Err(malformed(what));
        };
        let mut parts = parts.into_iter();
        let id = parts
            .next()
            .and_then(string)
            .ok_or_else(|| malformed(what))?;
        let raw = match parts.next() {
            Some(Value::Array(raw)) => raw,
            Some(Value::Map(pairs)) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
            Some(Value::Nil) | None => continue,
            Some(_) => return Err(malformed(what)),
        };
        let mut fields = Vec::with_capacity(raw.len() / 2);
        let mut raw = raw.into_iter();
        while let (Some(name), Some(value)) = (raw.next(), raw.next()) {
            let (Some(name), Some(value)) = (bytes(name), bytes(value)) else {
                return Err(malformed(what));
            };
            fields.push((name, value));
        }
        out.push(Entry { id, fields });
    }
    Ok(out)
}

/// The entries of an `XRANGE` or `XREVRANGE` reply.
pub fn range_reply(value: Value) -> Result<Vec<Entry>, KvError> {
    entries(value, "XRANGE")
}

/// The entries of an `XREADGROUP` or `XREAD` reply on one stream (nil when none
/// came).
pub fn read_reply(value: Value) -> Result<Vec<Entry>, KvError> {
    const WHAT: &str = "XREADGROUP";
    let streams: Vec<(Value, Value)> = match value {
        Value::Nil => return Ok(Vec::new()),
        // RESP3
        Value::Map(pairs) => pairs,
        Value::Array(streams) => streams
            .into_iter()
            .map(|stream| match stream {
                Value::Array(pair) => {
                    let mut pair = pair.into_iter();
                    match (pair.next(), pair.next()) {
                        (Some(key), Some(entries)) => Ok((key, entries)),
                        _ => Err(malformed(WHAT)),
                    }
                }
                _ => Err(malformed(WHAT)),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(malformed(WHAT)),
    };
    let mut out = Vec::new();
    for (_, list) in streams {
        out.extend(entries(list, WHAT)?);
    }
    Ok(out)
}

/// An `XAUTOCLAIM` reply: the next cursor, the claimed entries, and the ids of
/// pending entries that were trimmed from the stream meanwhile.
pub(super) struct Claimed {
    pub(super) next: String,
    pub(super) entries: Vec<Entry>,
    pub(super) deleted: usize,
}

/// Reads an `XAUTOCLAIM` reply.
pub(super) fn claim_reply(value: Value) -> Result<Claimed, KvError> {
    const WHAT: &str = "XAUTOCLAIM";
    let Value::Array(parts) = value else {
        return Err(malformed(WHAT));
    };
    let mut parts = parts.into_iter();
    let next = parts
        .next()
        .and_then(string)
        .ok_or_else(|| malformed(WHAT))?;
    let claimed = entries(parts.next().ok_or_else(|| malformed(WHAT))?, WHAT)?;
    let deleted = match parts.next() {
        Some(Value::Array(ids)) => ids.len(),
        _ => 0,
    };
    Ok(Claimed {
        next,
        entries: claimed,
        deleted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    fn entry(id: &str, fields: &[&str]) -> Value {
        Value::Array(vec![
            bulk(id),
            Value::Array(fields.iter().map(|f| bulk(f)).collect()),
        ])
    }

    #[test]
    fn a_read_reply_yields_its_entries_in_order() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("p:events"),
            Value::Array(vec![
                entry(
                    "1700000000000-0",
                    &["id", "e1", "topic", "order.placed", "payload", r#"{"n":1}"#],
                ),
                entry(
                    "1700000000001-3",
                    &["id", "e2", "topic", "t", "payload", "2"],
                ),
            ]),
        ])]);
        let got = read_reply(reply).unwrap();
        assert_eq!(got.len(), 2);
        let first = got[0].decode().unwrap();
        assert_eq!(
            (first.id.as_str(), first.topic.as_str()),
            ("e1", "order.placed")
        );
        assert_eq!(first.payload, serde_json::json!({"n": 1}));
        assert_eq!(got[1].appended_at_ms(), Some(1_700_000_000_001));
        assert_eq!(got[1].decode().unwrap().payload, serde_json::json!(2));
        assert!(read_reply(Value::Nil).unwrap().is_empty());
    }

    #[test]
    fn an_entry_without_an_event_says_what_it_lacks() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("k"),
            Value::Array(vec![
                entry("1-0", &["id", "e", "topic", "t"]),
                entry("2-0", &["id", "e", "topic", "t", "payload", "{not json"]),
            ]),
        ])]);
        let got = read_reply(reply).unwrap();
        assert_eq!(got[0].decode().unwrap_err(), "no payload field");
        assert!(got[1].decode().unwrap_err().starts_with("payload: "));
    }

    #[test]
    fn a_claim_reply_skips_deleted_entries_and_counts_them() {
        let reply = Value::Array(vec![
            bulk("0-0"),
            Value::Array(vec![
                entry("5-0", &["id", "e", "topic", "t", "payload", "1"]),
                Value::Array(vec![bulk("6-0"), Value::Nil]),
            ]),
            Value::Array(vec![bulk("7-0"), bulk("8-0")]),
        ]);
        let claimed = claim_reply(reply).unwrap();
        assert_eq!(claimed.next, "0-0");
        assert_eq!(claimed.entries.len(), 1);
        assert_eq!(claimed.deleted, 2);
    }

    #[test]
    fn a_malformed_reply_is_an_error_not_a_panic() {
        assert!(read_reply(Value::Int(3)).is_err());
        assert!(read_reply(Value::Array(vec![Value::Int(1)])).is_err());
        assert!(claim_reply(Value::Array(vec![])).is_err());
    }
}
