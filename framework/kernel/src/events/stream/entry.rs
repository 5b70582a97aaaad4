//! The event relay's view of stream entries: an entry carries an event in three
//! fields (`id`, `topic`, `payload`); `XAUTOCLAIM` replies. Entries themselves are
//! read by [`crate::kv::stream_entry`].

use redis::Value;

use crate::events::Event;
use crate::kv::KvError;
pub use crate::kv::stream_entry::{Entry, read_reply};
use crate::kv::stream_entry::{entries, malformed, string};

impl Entry {
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
    use crate::kv::stream_entry::replies::{bulk, entry};

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
    fn a_malformed_claim_reply_is_an_error_not_a_panic() {
        assert!(claim_reply(Value::Array(vec![])).is_err());
        assert!(claim_reply(Value::Int(3)).is_err());
    }
}
