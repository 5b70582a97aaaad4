//! Live configuration: what a reload (SIGHUP) may change without a restart — the
//! log filter, rate limits and CORS origins — and the reload itself.
//!
//! A new configuration is validated as a whole first: if anything is wrong it is
//! refused with a log line and the running settings stay. Changes to other keys
//! (database URL, port...) are reported as needing a restart and not applied.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};

use super::AppContext;
use crate::config::{Config, ConfigLoader, ConfigSection};
use crate::guard::GuardConfig;
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

/// The live settings and when they were last reloaded.
pub(crate) struct LiveState {
    settings: RwLock<Arc<LiveSettings>>,
    last_reload: RwLock<Option<DateTime<Utc>>>,
}

impl LiveState {
    pub(crate) fn new(config: &Config) -> Self {
        LiveState {
            settings: RwLock::new(Arc::new(LiveSettings::of(config))),
            last_reload: RwLock::new(None),
        }
    }
}

/// How the app re-reads its configuration on SIGHUP.
#[derive(Clone)]
pub struct ConfigSource(pub ConfigLoader);

fn section_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

impl AppContext {
    /// The settings in force now (they change on reload).
    pub fn live(&self) -> Arc<LiveSettings> {
        self.live_state()
            .settings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// When the configuration was last reloaded, if ever.
    pub fn last_reload(&self) -> Option<DateTime<Utc>> {
        *self
            .live_state()
            .last_reload
            .read()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Applies what can change live from `new`; returns the changed keys. Refused,
    /// with nothing applied, if `new` does not validate or its log filter is bad.
    pub fn reload(&self, new: &Config) -> crate::Result<Vec<String>> {
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
        let running = self.config();
        let kernel = [
            (
                "server",
                section_json(&new.server) != section_json(&running.server),
            ),
            (
                "database",
                section_json(&new.database) != section_json(&running.database),
            ),
            (
                "redis",
                section_json(&new.redis) != section_json(&running.redis),
            ),
            (
                "crypto",
                section_json(&new.crypto) != section_json(&running.crypto),
            ),
        ];
        let sections = crate::config::sections()
            .into_iter()
            .filter(|s| !LIVE_SECTIONS.contains(&s.name))
            .map(|s| (s.name, s.current(new) != s.current(running)));
        let needs_restart: Vec<&str> = kernel
            .into_iter()
            .chain(sections)
            .filter(|(_, changed)| *changed)
            .map(|(name, _)| name)
            .collect();
        if !needs_restart.is_empty() {
            tracing::warn!(sections = %needs_restart.join(","), "changed sections need a restart; not applied");
        }
        *self
            .live_state()
            .settings
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
        *self
            .live_state()
            .last_reload
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(Utc::now());
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
