//! `AccessTokenCache`: one access token shared by every task and every instance.
//!
//! Most production incidents in peer SDKs come from instances overwriting each other's
//! token. Here the token lives in the [`KvStore`] (Redis in production) with an
//! in-process copy in front. It is refreshed ahead of expiry (at
//! `wechat.token.refresh_ratio` of its lifetime), single-flight: within a process a
//! mutex lets one task refresh, and across instances a lock key in the store (with an
//! expiry and an owner check on release) lets one instance refresh while the others
//! wait for the fresh token to appear — or keep using the still-valid old one. A store
//! failure counts as a miss: the freshly fetched token is still returned.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::config::TokenConfig;
use super::error::WechatError;
use super::types::AccessToken;
use crate::kv::KvStore;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CachedToken {
    token: String,
    /// Unix milliseconds.
    refresh_at: i64,
    /// Unix milliseconds.
    expires_at: i64,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// See the module documentation.
pub struct AccessTokenCache {
    kv: Arc<dyn KvStore>,
    key: String,
    lock_key: String,
    config: TokenConfig,
    local: std::sync::RwLock<Option<CachedToken>>,
    refreshing: Mutex<()>,
}

impl AccessTokenCache {
    /// A cache for `appid` kept in `kv`.
    pub fn new(kv: Arc<dyn KvStore>, appid: &str, config: &TokenConfig) -> Self {
        AccessTokenCache {
            kv,
            key: format!("wechat:access_token:{appid}"),
            lock_key: format!("wechat:access_token:lock:{appid}"),
            config: config.clone(),
            local: std::sync::RwLock::new(None),
            refreshing: Mutex::new(()),
        }
    }

    fn local(&self) -> Option<CachedToken> {
        self.local.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_local(&self, token: Option<CachedToken>) {
        *self.local.write().unwrap_or_else(|p| p.into_inner()) = token;
    }

    async fn shared(&self) -> Option<CachedToken> {
        match self.kv.get(&self.key).await {
            Ok(Some(raw)) => serde_json::from_slice(&raw).ok(),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "token store unavailable; treating as a miss");
                None
            }
        }
    }

    /// The current token, fetching one with `fetch` when none is fresh.
    pub async fn get<F, Fut>(&self, fetch: F) -> Result<String, WechatError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<AccessToken, WechatError>>,
    {
        if let Some(t) = self.local().filter(|t| now_ms() < t.refresh_at) {
            return Ok(t.token);
        }
        let _guard = self.refreshing.lock().await;
        if let Some(t) = self.local().filter(|t| now_ms() < t.refresh_at) {
            return Ok(t.token);
        }
        let lock_ttl = Duration::from_millis(self.config.lock_ttl_ms);
        let give_up = now_ms() + self.config.lock_ttl_ms as i64;
        loop {
            let shared = self.shared().await;
            if let Some(t) = shared.clone().filter(|t| now_ms() < t.refresh_at) {
                self.set_local(Some(t.clone()));
                return Ok(t.token);
            }
            let owner = uuid::Uuid::new_v4().to_string();
            let locked = match self
                .kv
                .set_if_absent(&self.lock_key, owner.as_bytes(), Some(lock_ttl))
                .await
            {
                Ok(locked) => locked,
                Err(e) => {
                    tracing::warn!(error = %e, "token lock unavailable; refreshing without it");
                    true
                }
            };
            if locked {
                // Another instance may have refreshed and released the lock between
                // our read and our lock: its token is the one to use.
                let refreshed = self.shared().await.filter(|t| now_ms() < t.refresh_at);
                let result = match refreshed {
                    Some(t) => {
                        self.set_local(Some(t.clone()));
                        Ok(t.token)
                    }
                    None => self.refresh(&fetch).await,
                };
                let _ = self
                    .kv
                    .delete_if_equals(&self.lock_key, owner.as_bytes())
                    .await;
                return result;
            }
            // Another instance is refreshing: a still-valid token serves meanwhile.
            if let Some(t) = shared.filter(|t| now_ms() < t.expires_at) {
                return Ok(t.token);
            }
            if now_ms() > give_up {
                return self.refresh(&fetch).await;
            }
            tokio::time::sleep(Duration::from_millis(self.config.poll_ms)).await;
        }
    }

    async fn refresh<F, Fut>(&self, fetch: &F) -> Result<String, WechatError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<AccessToken, WechatError>>,
    {
        let fresh = fetch().await?;
        crate::observe::upstream::upstream().token_refreshes.inc();
        let now = now_ms();
        let lifetime_ms = fresh.expires_in.max(1) * 1000;
        let cached = CachedToken {
            token: fresh.access_token.clone(),
            refresh_at: now + (lifetime_ms as f64 * self.config.refresh_ratio) as i64,
            expires_at: now + lifetime_ms,
        };
        let raw = serde_json::to_vec(&cached).unwrap_or_default();
        if let Err(e) = self
            .kv
            .set(
                &self.key,
                &raw,
                Some(Duration::from_millis(lifetime_ms as u64)),
            )
            .await
        {
            tracing::warn!(error = %e, "could not share the new access token");
        }
        self.set_local(Some(cached));
        tracing::info!(expires_in = fresh.expires_in, "access token refreshed");
        Ok(fresh.access_token)
    }

    /// Forgets `rejected` if it is still the cached token (another instance may have
    /// replaced it already, and that newer token must survive).
    pub async fn invalidate(&self, rejected: &str) {
        if self.local().is_some_and(|t| t.token == rejected) {
            self.set_local(None);
        }
        if let Ok(Some(raw)) = self.kv.get(&self.key).await
            && serde_json::from_slice::<CachedToken>(&raw).is_ok_and(|t| t.token == rejected)
        {
            let _ = self.kv.delete_if_equals(&self.key, &raw).await;
        }
    }
}
