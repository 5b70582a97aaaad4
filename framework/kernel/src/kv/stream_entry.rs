//! Redis stream entries as Redis sends them, read straight from the reply's values:
//! the event relay's, the broadcast streams', and any other reader's in the app.
//!
//! The redis crate's stream replies copy every entry into a `HashMap` of
//! `redis::Value`s; on the event relay's hot path (each order's events, read by
//! each group) that was most of the consumer's own CPU.

use redis::Value;

use super::KvError;

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

    /// Milliseconds since the epoch at which the entry was appended (its id's first
    /// part).
    pub fn appended_at_ms(&self) -> Option<i64> {
        self.id.split('-').next()?.parse().ok()
    }
}

pub(crate) fn malformed(what: &str) -> KvError {
    KvError(format!("unexpected Redis reply to {what}"))
}

fn bytes(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) => Some(text.into_bytes()),
        _ => None,
    }
}

pub(crate) fn string(value: Value) -> Option<String> {
    String::from_utf8(bytes(value)?).ok()
}

/// A list of entries (`[[id, [field, value, ...]], ...]`). An entry deleted while
/// pending comes with no fields (nil); it is skipped, as XAUTOCLAIM reports it
/// separately.
pub(crate) fn entries(value: Value, what: &str) -> Result<Vec<Entry>, KvError> {
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

/// Replies as Redis sends them, for tests of their readers.
#[cfg(test)]
pub(crate) mod replies {
    use redis::Value;

    /// A bulk string.
    pub(crate) fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    /// One entry: `[id, [field, value, ...]]`.
    pub(crate) fn entry(id: &str, fields: &[&str]) -> Value {
        Value::Array(vec![
            bulk(id),
            Value::Array(fields.iter().map(|f| bulk(f)).collect()),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::replies::{bulk, entry};
    use super::*;

    #[test]
    fn read_and_range_replies_yield_their_entries_in_order() {
        let list = || {
            Value::Array(vec![
                entry("1700000000000-0", &["a", "1"]),
                entry("1700000000001-3", &["b", "2", "c", "3"]),
            ])
        };
        let read = read_reply(Value::Array(vec![Value::Array(vec![bulk("p:s"), list()])])).unwrap();
        let range = range_reply(list()).unwrap();
        for got in [read, range] {
            assert_eq!(got.len(), 2);
            assert_eq!(got[0].field("a"), Some(&b"1"[..]));
            assert_eq!(got[1].field("c"), Some(&b"3"[..]));
            assert_eq!(got[1].field("a"), None);
            assert_eq!(got[1].appended_at_ms(), Some(1_700_000_000_001));
        }
        assert!(read_reply(Value::Nil).unwrap().is_empty());
        assert!(range_reply(Value::Array(vec![])).unwrap().is_empty());
    }

    #[test]
    fn a_malformed_reply_is_an_error_not_a_panic() {
        assert!(read_reply(Value::Int(3)).is_err());
        assert!(read_reply(Value::Array(vec![Value::Int(1)])).is_err());
        assert!(range_reply(Value::Int(3)).is_err());
    }
}
