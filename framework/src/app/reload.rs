//! Live configuration: what a reload (SIGHUP) may change without a restart — the
//! log filter, rate limits, CORS origins and admin tokens — and the reload itself.
//!
//! A new configuration is validated as a whole first: if anything is wrong it is
//! refused with a log line and the running settings stay. Changes to other keys
//! (database URL, port...) are reported as needing a restart and not applied.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};

use super::AppContext;
use crate::config::{Config, ConfigLoader, ConfigSection};
use crate::guard::GuardConfig;
use crate::health::LastReload;
use crate::observe::ObserveConfig;

/// The settings a reload can change.
#[derive(Debug, Clone)]
pub struct LiveSettings {
    /// `observe.log_level`.
    pub log_level: String,
    /// `[guard]`: rate limits, CORS origins, trusted proxies, signing.
    pub guard: GuardConfig,
}

impl LiveSettings {
    /// The live part of `config`; sections were checked when it loaded, so one that
    /// cannot be read here falls back to its defaults.
    fn of(config: &Config) -> Self {
        LiveSettings {
            log_level: config
                .get::<ObserveConfig>()
                .map(|o| o.log_level.clone())
                .unwrap_or_else(|_| ObserveConfig::default().log_level),
            guard: config
                .get::<GuardConfig>()
                .map(|g| (*g).clone())
                .unwrap_or_default(),
        }
    }
}

/// Sections a reload applies (in part) without a restart.
const LIVE_SECTIONS: [&str; 2] = [GuardConfig::NAME, ObserveConfig::NAME];

/// The log filter in force; a service in the context. The guard keeps its own live
/// settings ([`crate::guard::LiveGuard`]), health the time of the last reload ([`LastReload`]).
pub(crate) struct LiveState {
    log_level: RwLock<String>,
}

impl LiveState {
    pub(crate) fn new(config: &Config) -> Self {
        let observe = config.get::<ObserveConfig>().unwrap_or_default();
        LiveState {
            log_level: RwLock::new(observe.log_level.clone()),
        }
    }
}

/// A section's values without the keys a reload applies live (`auth.admin_tokens`),
/// to tell whether the rest changed and needs a restart.
fn without_live_keys(section: Option<serde_json::Value>) -> Option<serde_json::Value> {
    section.map(|mut value| {
        if let Some(fields) = value.as_object_mut() {
            fields.remove("admin_tokens");
        }
        value
    })
}

/// How the app re-reads its configuration on SIGHUP.
#[derive(Clone)]
pub struct ConfigSource(pub ConfigLoader);

fn section_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// The context's live settings, found once per call; a context built without the
/// app builder (a test's, a command's) starts them from its configuration.
fn live_state(ctx: &AppContext) -> Arc<LiveState> {
    ctx.get_or_insert_with(|| LiveState::new(ctx.config()))
}

/// Live configuration on the app's context: what is in force now, and the reload
/// that changes it. `use weapp::app::LiveConfig;` (or the prelude) to call it.
pub trait LiveConfig {
    /// The settings in force now (they change on reload).
    fn live(&self) -> Arc<LiveSettings>;

    /// When the configuration was last reloaded, if ever.
    fn last_reload(&self) -> Option<DateTime<Utc>>;

    /// Applies what can change live from `new`; returns the changed keys. Refused,
    /// with nothing applied, if `new` does not validate or its log filter is bad.
    fn reload(&self, new: &Config) -> crate::Result<Vec<String>>;
}

impl LiveConfig for AppContext {
    fn live(&self) -> Arc<LiveSettings> {
        let log_level = live_state(self)
            .log_level
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let guard = (*crate::guard::live(self)).clone();
        Arc::new(LiveSettings { log_level, guard })
    }

    fn last_reload(&self) -> Option<DateTime<Utc>> {
        self.get::<LastReload>().and_then(|r| r.get())
    }

    fn reload(&self, new: &Config) -> crate::Result<Vec<String>> {
        new.validate()?;
        let old = self.live();
        let next = LiveSettings::of(new);
        let mut changed = Vec::new();
        if next.log_level != old.log_level {
            crate::observe::set_log_filter(&next.log_level)
                .map_err(|e| crate::config::ConfigError::Load(format!("observe.log_level: {e}")))?;
            changed.push("observe.log_level".to_owned());
        }
        let guard_keys = [
            (
                "guard.rate_limits",
                section_json(&next.guard.rate_limits) != section_json(&old.guard.rate_limits),
            ),
            (
                "guard.cors",
                section_json(&next.guard.cors) != section_json(&old.guard.cors),
            ),
            (
                "guard.trusted_proxies",
                section_json(&next.guard.trusted_proxies)
                    != section_json(&old.guard.trusted_proxies),
            ),
            (
                "guard.signing",
                section_json(&next.guard.signing) != section_json(&old.guard.signing),
            ),
            (
                "guard.tcb",
                section_json(&next.guard.tcb) != section_json(&old.guard.tcb),
            ),
        ];
        changed.extend(
            guard_keys
                .iter()
                .filter(|(_, c)| *c)
                .map(|(k, _)| (*k).to_owned()),
        );
        let admin_tokens = new
            .get::<crate::auth::AuthConfig>()
            .map(|auth| auth.admin_tokens.clone())
            .unwrap_or_default();
        let admin_tokens_changed = {
            let current = crate::auth::AdminTokens::of(self).current();
            *current != admin_tokens
        };
        if admin_tokens_changed {
            changed.push("auth.admin_tokens".to_owned());
        }
        let running = self.config();
        let kernel = [
            (
                "server",
                section_json(&new.server) != section_json(&running.server),
            ),
            (
                "crypto",
                section_json(&new.crypto) != section_json(&running.crypto),
            ),
        ];
        let sections = crate::config::sections()
            .into_iter()
            .filter(|s| !LIVE_SECTIONS.contains(&s.name))
            .map(|s| {
                (
                    s.name,
                    without_live_keys(s.current(new)) != without_live_keys(s.current(running)),
                )
            });
        let needs_restart: Vec<&str> = kernel
            .into_iter()
            .chain(sections)
            .filter(|(_, changed)| *changed)
            .map(|(name, _)| name)
            .collect();
        if !needs_restart.is_empty() {
            tracing::warn!(sections = %needs_restart.join(","), "changed sections need a restart; not applied");
        }
        let state = live_state(self);
        *state.log_level.write().unwrap_or_else(|p| p.into_inner()) = next.log_level;
        crate::guard::state(self).replace(next.guard);
        crate::auth::AdminTokens::of(self).replace(admin_tokens);
        self.get_or_insert_with(LastReload::default).record_now();
        tracing::info!(changed = %changed.join(","), "configuration reloaded");
        Ok(changed)
    }
}

/// Reloads on every SIGHUP until shutdown (Unix only).
pub(crate) async fn on_sighup(ctx: AppContext, source: ConfigSource) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; configuration reload is off");
            return;
        };
        loop {
            tokio::select! {
                _ = ctx.shutdown().wait() => break,
                got = hangups.recv() => if got.is_none() { break },
            }
            let loaded = source.0.clone().load();
            let outcome = match loaded {
                Ok(config) => ctx.reload(&config).map(drop),
                Err(e) => Err(e.into()),
            };
            if let Err(e) = outcome {
                tracing::error!(error = %e, "configuration reload refused; keeping the running configuration");
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (ctx, source);
    }
}
