//! Taking a signed message once: its timestamp within a window of our clock, and
//! its nonce remembered for that window, so a captured message cannot be replayed.
//! Request signing, cloud callbacks and WeChat pushes all check this way.

use std::time::Duration;

use super::{KvError, KvStore};

/// Why a signed message was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The timestamp is not Unix seconds.
    BadTimestamp,
    /// The timestamp is further than the allowed skew from our clock.
    OutsideWindow,
    /// A part of the nonce is longer than 64 characters.
    NonceTooLong,
    /// The same nonce was taken before, within the window.
    Replayed,
}

/// Takes the message stamped `timestamp` (Unix seconds) whose nonce is made of
/// `nonce` (each part at most 64 characters), remembering it under `scope` for twice
/// `max_skew_s`; returns the key that remembers it (to forget it again, e.g. when
/// handling failed and a retry is wanted), or why it was refused.
pub async fn take_once(
    kv: &dyn KvStore,
    scope: &str,
    timestamp: &str,
    nonce: &[&str],
    max_skew_s: u64,
) -> Result<Result<String, Refusal>, KvError> {
    let Ok(seconds) = timestamp.parse::<i64>() else {
        return Ok(Err(Refusal::BadTimestamp));
    };
    if !crate::clock::within(crate::clock::now_s(), seconds, max_skew_s) {
        return Ok(Err(Refusal::OutsideWindow));
    }
    if nonce.iter().any(|part| part.len() > 64) {
        return Ok(Err(Refusal::NonceTooLong));
    }
    let key = format!("{scope}:{}", nonce.join(":"));
    let window = Duration::from_secs(max_skew_s.saturating_mul(2).saturating_add(1));
    if !kv.set_if_absent(&key, b"1", Some(window)).await? {
        return Ok(Err(Refusal::Replayed));
    }
    Ok(Ok(key))
}
