//! Collecting registered plugins and ordering them by dependency.

use std::collections::{BTreeMap, BTreeSet};

use super::{Plugin, PluginRegistration};

/// Why the plugin set cannot start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    /// Two plugins share a name.
    #[error("two plugins are named `{0}`; plugin names must be unique")]
    Duplicate(String),
    /// A plugin depends on one that is not registered.
    #[error(
        "plugin `{plugin}` depends on `{dependency}`, which is not registered \
         (is its crate referenced, e.g. `use weapp_{dependency} as _;`?)"
    )]
    MissingDependency {
        /// The dependent plugin.
        plugin: String,
        /// The missing one.
        dependency: String,
    },
    /// A plugin depends on one that `plugins.disabled` turns off.
    #[error("plugin `{plugin}` depends on `{dependency}`, which plugins.disabled turns off")]
    DependsOnDisabled {
        /// The dependent plugin.
        plugin: String,
        /// The disabled one.
        dependency: String,
    },
    /// `plugins.disabled` names a plugin that is not registered (likely a typo).
    #[error("plugins.disabled names `{0}`, which is not a registered plugin")]
    UnknownDisabled(String),
    /// Dependencies form a cycle, given in order (first name repeated at the end).
    #[error("plugin dependencies form a cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
}

impl crate::error::SubsystemError for PluginError {
    fn context(&self) -> Option<&'static str> {
        Some("plugin error")
    }
}

/// Every plugin linked into this binary, in no particular order.
pub fn registered() -> Vec<&'static dyn Plugin> {
    inventory::iter::<PluginRegistration>
        .into_iter()
        .map(|registration| registration.0)
        .collect()
}

/// Drops disabled plugins and orders the rest so each comes after its dependencies;
/// ties are broken by name, so the order is the same on every start.
pub fn resolve(
    plugins: &[&'static dyn Plugin],
    disabled: &[String],
) -> Result<Vec<&'static dyn Plugin>, PluginError> {
    let mut by_name: BTreeMap<&str, &'static dyn Plugin> = BTreeMap::new();
    for plugin in plugins {
        if by_name.insert(plugin.name(), *plugin).is_some() {
            return Err(PluginError::Duplicate(plugin.name().to_owned()));
        }
    }
    if let Some(unknown) = disabled.iter().find(|d| !by_name.contains_key(d.as_str())) {
        return Err(PluginError::UnknownDisabled(unknown.clone()));
    }
    by_name.retain(|name, _| !disabled.iter().any(|d| d == name));

    for plugin in by_name.values() {
        for dependency in plugin.dependencies() {
            if by_name.contains_key(dependency) {
                continue;
            }
            let (plugin, dependency) = (plugin.name().to_owned(), (*dependency).to_owned());
            return Err(if disabled.contains(&dependency) {
                PluginError::DependsOnDisabled { plugin, dependency }
            } else {
                PluginError::MissingDependency { plugin, dependency }
            });
        }
    }

    // Kahn's algorithm over names, always taking the smallest ready name.
    let mut pending: BTreeMap<&str, usize> = by_name
        .values()
        .map(|p| (p.name(), p.dependencies().len()))
        .collect();
    let mut ready: BTreeSet<&str> = pending
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(name, _)| *name)
        .collect();
    let mut ordered = Vec::with_capacity(by_name.len());
    while let Some(name) = ready.pop_first() {
        pending.remove(name);
        ordered.push(by_name[name]);
        for plugin in by_name.values() {
            let waits = plugin.dependencies().iter().filter(|d| **d == name).count();
            if waits > 0
                && let Some(n) = pending.get_mut(plugin.name())
            {
                *n -= waits;
                if *n == 0 {
                    ready.insert(plugin.name());
                }
            }
        }
    }
    if pending.is_empty() {
        Ok(ordered)
    } else {
        Err(PluginError::Cycle(find_cycle(&by_name, &pending)))
    }
}

/// Follows unresolved dependencies from the smallest stuck name until a name repeats.
fn find_cycle(
    by_name: &BTreeMap<&str, &'static dyn Plugin>,
    stuck: &BTreeMap<&str, usize>,
) -> Vec<String> {
    let mut path: Vec<&str> = Vec::new();
    let mut current = *stuck.keys().next().expect("a cycle has members");
    loop {
        if let Some(start) = path.iter().position(|n| *n == current) {
            let mut cycle: Vec<String> = path[start..].iter().map(|n| (*n).to_owned()).collect();
            cycle.push(current.to_owned());
            return cycle;
        }
        path.push(current);
        current = by_name[current]
            .dependencies()
            .iter()
            .copied()
            .filter(|d| stuck.contains_key(d))
            .min()
            .expect("a stuck plugin waits on another stuck plugin");
    }
}
