//! Typed configuration sections: each feature and plugin owns one top-level table.
//!
//! A section is a serde type with defaults that implements [`ConfigSection`] (its
//! name and checks) and is registered with [`config_section!`](crate::config_section).
//! The kernel's [`Config`] knows only its own tables; every registered section is
//! parsed and checked when the configuration loads, so a typo or a bad value stops
//! start-up naming the key, and `config check` reports it before a deploy.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use weapp::config::{Config, ConfigIssue, ConfigSection};
//!
//! /// `[coupon]`: how coupons behave.
//! #[derive(Debug, Clone, Serialize, Deserialize)]
//! #[serde(default, deny_unknown_fields)]
//! pub struct CouponConfig {
//!     /// Largest discount in fen.
//!     pub max_discount_fen: i64,
//! }
//!
//! impl Default for CouponConfig {
//!     fn default() -> Self {
//!         CouponConfig { max_discount_fen: 5_000 }
//!     }
//! }
//!
//! impl ConfigSection for CouponConfig {
//!     const NAME: &'static str = "coupon";
//!     fn issues(&self, _config: &Config) -> Vec<ConfigIssue> {
//!         if self.max_discount_fen < 0 {
//!             return vec![ConfigIssue::new("coupon.max_discount_fen", "must not be negative")];
//!         }
//!         Vec::new()
//!     }
//! }
//! weapp::config_section!(CouponConfig);
//!
//! let config = Config::default();
//! assert_eq!(config.get::<CouponConfig>().unwrap().max_discount_fen, 5_000);
//! ```

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Config, ConfigError, ConfigIssue};

/// A top-level configuration table owned by a feature or a plugin.
pub trait ConfigSection: Serialize + DeserializeOwned + Default + Send + Sync + 'static {
    /// The table's name, e.g. `order`; also the `WEAPP__ORDER__…` variable prefix.
    const NAME: &'static str;

    /// Problems with values that parsed, each naming its full dotted key. `config`
    /// gives the environment and the kernel's own sections.
    fn issues(&self, _config: &Config) -> Vec<ConfigIssue> {
        Vec::new()
    }
}

/// A section as submitted to the compile-time registry; see
/// [`config_section!`](crate::config_section).
pub struct SectionRegistration {
    /// The table's name.
    pub name: &'static str,
    check: fn(&Config) -> Vec<ConfigIssue>,
    defaults: fn() -> serde_json::Value,
    current: fn(&Config) -> Option<serde_json::Value>,
}

impl SectionRegistration {
    /// The registration of `T`.
    pub const fn of<T: ConfigSection>() -> Self {
        SectionRegistration {
            name: T::NAME,
            check: check::<T>,
            defaults: defaults::<T>,
            current: current::<T>,
        }
    }

    /// Parse errors and problems of this section in `config`.
    pub fn issues(&self, config: &Config) -> Vec<ConfigIssue> {
        (self.check)(config)
    }

    /// The section's defaults, as JSON (for the configuration reference).
    pub fn defaults(&self) -> serde_json::Value {
        (self.defaults)()
    }

    /// The section's values in `config`, secrets redacted; `None` if it does not
    /// parse.
    pub fn current(&self, config: &Config) -> Option<serde_json::Value> {
        (self.current)(config)
    }
}

inventory::collect!(SectionRegistration);

/// Registers a [`ConfigSection`] type, so loading the configuration checks it.
#[macro_export]
macro_rules! config_section {
    ($section:ty) => {
        $crate::inventory::submit! {
            $crate::config::SectionRegistration::of::<$section>()
        }
    };
}

/// Every section linked into this binary, by name.
pub fn sections() -> Vec<&'static SectionRegistration> {
    let mut all: Vec<_> = inventory::iter::<SectionRegistration>.into_iter().collect();
    all.sort_by_key(|s| s.name);
    all.dedup_by_key(|s| s.name);
    all
}

fn check<T: ConfigSection>(config: &Config) -> Vec<ConfigIssue> {
    match config.get::<T>() {
        Ok(section) => section.issues(config),
        Err(ConfigError::Invalid(issues)) => issues,
        Err(other) => vec![ConfigIssue::new(T::NAME, other.to_string())],
    }
}

fn defaults<T: ConfigSection>() -> serde_json::Value {
    serde_json::to_value(T::default()).unwrap_or_default()
}

fn current<T: ConfigSection>(config: &Config) -> Option<serde_json::Value> {
    config
        .get::<T>()
        .ok()
        .and_then(|s| serde_json::to_value(&*s).ok())
}

/// Parsed sections by type, shared by a configuration's clones: a section is
/// parsed once, then read by reference count.
#[derive(Clone, Default)]
pub(super) struct SectionCache(Arc<RwLock<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>>);

impl std::fmt::Debug for SectionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("..")
    }
}

impl Config {
    /// The section `T`, parsed on first use and shared after. Every registered
    /// section was checked when the configuration loaded, so this fails only for an
    /// unregistered type whose values do not parse.
    pub fn get<T: ConfigSection>(&self) -> Result<Arc<T>, ConfigError> {
        let cache = &self.sections.0;
        if let Some(hit) = cache
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&TypeId::of::<T>())
            .cloned()
            .and_then(|any| any.downcast::<T>().ok())
        {
            return Ok(hit);
        }
        let parsed = Arc::new(
            self.parse::<T>()
                .map_err(|issue| ConfigError::Invalid(vec![issue]))?,
        );
        cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(TypeId::of::<T>(), parsed.clone());
        Ok(parsed)
    }

    /// Replaces section `T` in this configuration only (its clones made before keep
    /// theirs), e.g. to try a changed configuration with
    /// `AppContext::reload` (in `weapp`). Checked by
    /// [`Config::validate`] like a loaded one.
    pub fn set_section<T: ConfigSection>(&mut self, section: T) {
        let mut detached = self
            .sections
            .0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        detached.insert(TypeId::of::<T>(), Arc::new(section));
        self.sections = SectionCache(Arc::new(RwLock::new(detached)));
    }

    fn parse<T: ConfigSection>(&self) -> Result<T, ConfigIssue> {
        let figment = &self.raw.0;
        // A missing table is the type's defaults. Errors of a present one get the
        // table's name in front, so they carry the full key and its variable
        // (`WEAPP__ORDER__…`).
        match figment.find_value(T::NAME) {
            Err(_) => return Ok(T::default()),
            Ok(figment::value::Value::Dict(..)) => {}
            Ok(other) => {
                return Err(ConfigIssue::new(
                    T::NAME,
                    format!("must be a table of settings, found {}", other.to_actual()),
                ));
            }
        }
        figment.focus(T::NAME).extract::<T>().map_err(|mut e| {
            e.path.insert(0, T::NAME.to_owned());
            let key = e.path.join(".");
            let reason = super::ConfigError::from(e).to_string();
            ConfigIssue { key, reason }
        })
    }
}
