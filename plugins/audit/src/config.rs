//! The `[audit]` config section.

use serde::{Deserialize, Serialize};
use weapp::config::{Config, ConfigIssue, ConfigSection};

/// Settings of the audit plugin (`[audit]`, env `WEAPP__AUDIT__*`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// How often recorded rows are chained into the log.
    pub chain_interval_ms: u64,
    /// How often the retention task runs.
    pub retention_interval_ms: u64,
    /// How long the details of each kind of row stay in the live log.
    pub retention: Vec<RetentionRule>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            chain_interval_ms: 200,
            retention_interval_ms: 60_000,
            retention: vec![RetentionRule {
                action: "auth.login".to_owned(),
                keep_s: 72 * 3_600,
            }],
        }
    }
}

weapp::config_section!(AuditConfig);

impl ConfigSection for AuditConfig {
    const NAME: &'static str = "audit";

    fn issues(&self, _config: &Config) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        for (i, rule) in self.retention.iter().enumerate() {
            if rule.action.is_empty() {
                issues.push(ConfigIssue::new(
                    format!("audit.retention.{i}.action"),
                    "a rule needs an action",
                ));
            }
        }
        for (key, value) in [
            ("audit.chain_interval_ms", self.chain_interval_ms),
            ("audit.retention_interval_ms", self.retention_interval_ms),
        ] {
            if value == 0 {
                issues.push(ConfigIssue::new(key, "must be at least 1"));
            }
        }
        issues
    }
}

/// Rows whose action matches keep their details for `keep_s`, then the details move
/// to `audit_archive` (the row and its hash stay, so the chain still verifies).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionRule {
    /// An action (`auth.login`) or a prefix ending in `*` (`auth.*`).
    pub action: String,
    /// Seconds the details stay in the live log.
    pub keep_s: u64,
}

impl RetentionRule {
    /// The SQL `LIKE` pattern of the rule's actions.
    pub(crate) fn like_pattern(&self) -> String {
        let escaped = self
            .action
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        match escaped.strip_suffix('*') {
            Some(prefix) => format!("{prefix}%"),
            None => escaped,
        }
    }
}
