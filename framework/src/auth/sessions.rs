//! Server-side sessions in the key-value store.
//!
//! - `auth:session:{sid}` → the session: user, epoch, sealed `session_key`, current
//!   refresh-token hash. Deleting it logs that session out.
//! - `auth:epoch:{user}` → a counter; `logout-all` increments it, which ends every
//!   session created before. The extractor reads both keys in one round trip.
//! - `auth:user_sessions:{user}` → the user's newest session ids; `logout-all` also
//!   deletes each of them, so a lost counter (evicted, or a failover that missed
//!   it) cannot bring ended sessions back.
//! - `auth:refresh:{sha256}` → the session a refresh token belongs to, and
//!   `auth:refresh_used:{sha256}` once it has been used (reuse detection).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::kv::{KvError, KvStore};

/// One login session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    /// The user.
    pub user_id: i64,
    /// The user's epoch when the session began.
    pub epoch: i64,
    /// `session_key`, sealed with the field key ring, base64.
    pub sealed_session_key: String,
    /// SHA-256 of the current refresh token.
    pub refresh_hash: String,
}

/// A random URL-safe token of `bytes` random bytes.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the operating system's random source failed");
    URL_SAFE_NO_PAD.encode(buf)
}

/// Refresh tokens are stored only as their hash.
pub fn hash_token(token: &str) -> String {
    weapp_crypto::hex(&Sha256::digest(token.as_bytes()))
}

fn session_key(sid: &str) -> String {
    format!("auth:session:{sid}")
}

fn epoch_key(user_id: i64) -> String {
    format!("auth:epoch:{user_id}")
}

fn user_sessions_key(user_id: i64) -> String {
    format!("auth:user_sessions:{user_id}")
}

/// Session ids kept per user for `logout-all`; older sessions still end by the
/// epoch counter.
const INDEXED_SESSIONS: usize = 100;

fn refresh_key(hash: &str) -> String {
    format!("auth:refresh:{hash}")
}

/// Sessions on a [`KvStore`].
pub struct SessionStore<'a> {
    kv: &'a dyn KvStore,
    ttl: Duration,
}

fn decode<T: for<'de> Deserialize<'de>>(raw: Option<Vec<u8>>) -> Option<T> {
    raw.and_then(|r| serde_json::from_slice(&r).ok())
}

fn epoch_of(raw: Option<Vec<u8>>) -> i64 {
    raw.and_then(|r| String::from_utf8(r).ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

impl<'a> SessionStore<'a> {
    /// Sessions living `ttl`.
    pub fn new(kv: &'a dyn KvStore, ttl: Duration) -> Self {
        SessionStore { kv, ttl }
    }

    /// Starts a session; returns `(session id, refresh token)`.
    pub async fn create(
        &self,
        user_id: i64,
        sealed_session_key: String,
    ) -> Result<(String, String), KvError> {
        let sid = random_token(16);
        let refresh = random_token(32);
        let hash = hash_token(&refresh);
        let epoch = epoch_of(self.kv.get(&epoch_key(user_id)).await?);
        let session = Session {
            user_id,
            epoch,
            sealed_session_key,
            refresh_hash: hash,
        };
        self.save(&sid, &session).await?;
        self.kv
            .push_bounded(
                &user_sessions_key(user_id),
                sid.as_bytes(),
                INDEXED_SESSIONS,
                Some(self.ttl),
            )
            .await?;
        Ok((sid, refresh))
    }

    /// Stores a session and the lookup from its current refresh token.
    async fn save(&self, sid: &str, session: &Session) -> Result<(), KvError> {
        self.kv
            .set(
                &refresh_key(&session.refresh_hash),
                sid.as_bytes(),
                Some(self.ttl),
            )
            .await?;
        let raw = serde_json::to_vec(session).unwrap_or_default();
        self.kv.set(&session_key(sid), &raw, Some(self.ttl)).await
    }

    /// The live session `sid` of `user_id`: present, the user's, and not ended by
    /// `logout-all`. One round trip.
    pub async fn active(&self, sid: &str, user_id: i64) -> Result<Option<Session>, KvError> {
        let values = self
            .kv
            .get_many(&[&session_key(sid), &epoch_key(user_id)])
            .await?;
        let mut values = values.into_iter();
        let session: Option<Session> = decode(values.next().flatten());
        let epoch = epoch_of(values.next().flatten());
        Ok(session.filter(|s| s.user_id == user_id && s.epoch >= epoch))
    }

    /// Ends one session. Tell the app with [`Auth::session_ended`] too, for the
    /// instances that trust a checked session for `auth.session_cache_ms`.
    ///
    /// [`Auth::session_ended`]: super::Auth::session_ended
    pub async fn end(&self, sid: &str) -> Result<(), KvError> {
        self.kv.delete(&session_key(sid)).await.map(drop)
    }

    /// Ends every session of a user (tell the app too, as for [`end`](Self::end)):
    /// the epoch moves on (ending every session created before, indexed or not),
    /// and each indexed session is deleted.
    pub async fn end_all(&self, user_id: i64) -> Result<(), KvError> {
        self.kv.increment(&epoch_key(user_id), 1, None).await?;
        for sid in self.kv.take_list(&user_sessions_key(user_id)).await? {
            if let Ok(sid) = String::from_utf8(sid) {
                self.end(&sid).await?;
            }
        }
        Ok(())
    }

    /// Rotates a refresh token. `Ok(Err(reused))` distinguishes reuse, which ends the
    /// session, from an unknown token.
    pub async fn rotate(&self, refresh: &str) -> Result<RotateOutcome, KvError> {
        let hash = hash_token(refresh);
        let Some(sid) = self
            .kv
            .get(&refresh_key(&hash))
            .await?
            .and_then(|r| String::from_utf8(r).ok())
        else {
            return Ok(RotateOutcome::Unknown);
        };
        let first_use = self
            .kv
            .set_if_absent(&format!("auth:refresh_used:{hash}"), b"1", Some(self.ttl))
            .await?;
        let Some(stored) = self.kv.get(&session_key(&sid)).await? else {
            return Ok(RotateOutcome::Ended);
        };
        let Some(mut session) = decode::<Session>(Some(stored.clone())) else {
            return Ok(RotateOutcome::Ended);
        };
        if !first_use || session.refresh_hash != hash {
            // A stolen token raced its owner: end the whole chain.
            self.end(&sid).await?;
            return Ok(RotateOutcome::Reused {
                sid,
                user_id: session.user_id,
            });
        }
        let epoch = epoch_of(self.kv.get(&epoch_key(session.user_id)).await?);
        if session.epoch < epoch {
            return Ok(RotateOutcome::Ended);
        }
        let next = random_token(32);
        session.refresh_hash = hash_token(&next);
        // Only over the session as read: a logout or a reuse detection that ended it
        // meanwhile wins, and the ended session is not written back.
        let raw = serde_json::to_vec(&session).unwrap_or_default();
        if !self
            .kv
            .replace_if_equals(&session_key(&sid), &stored, &raw, Some(self.ttl))
            .await?
        {
            return Ok(RotateOutcome::Ended);
        }
        self.kv
            .set(
                &refresh_key(&session.refresh_hash),
                sid.as_bytes(),
                Some(self.ttl),
            )
            .await?;
        Ok(RotateOutcome::Rotated {
            sid,
            user_id: session.user_id,
            refresh: next,
        })
    }
}

/// What [`SessionStore::rotate`] found.
pub enum RotateOutcome {
    /// A new refresh token for the session.
    Rotated {
        /// Session id.
        sid: String,
        /// User id.
        user_id: i64,
        /// The new refresh token.
        refresh: String,
    },
    /// The token is unknown or expired.
    Unknown,
    /// The session has ended.
    Ended,
    /// The token was used before: the session has been ended.
    Reused {
        /// The ended session's id.
        sid: String,
        /// Its user.
        user_id: i64,
    },
}
