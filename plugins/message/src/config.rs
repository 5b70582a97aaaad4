//! The `[message]` config section.

use serde::{Deserialize, Serialize};
use weapp::config::{Config, ConfigIssue, ConfigSection};

/// Settings of the message plugin (`[message]`, env `WEAPP__MESSAGE__*`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MessageConfig {
    /// Pause between queue polls when the last batch was not full.
    pub poll_interval_ms: u64,
    /// Messages claimed per poll.
    pub batch_size: i64,
    /// How long a claim lasts before another worker may take the message over (or,
    /// for one that was being sent, record it as failed with an unknown outcome).
    pub lease_ms: i64,
    /// Send attempts before a retryable failure becomes final.
    pub max_attempts: i32,
    /// First retry delay, doubled per attempt up to `max_backoff_ms`.
    pub base_backoff_ms: i64,
    /// Longest retry delay.
    pub max_backoff_ms: i64,
    /// `msg_sec_check` scene for user text: 1 profile, 2 comment, 3 forum, 4 log.
    pub content_scene: u8,
}

impl Default for MessageConfig {
    fn default() -> Self {
        MessageConfig {
            poll_interval_ms: 500,
            batch_size: 50,
            lease_ms: 60_000,
            max_attempts: 6,
            base_backoff_ms: 1_000,
            max_backoff_ms: 300_000,
            content_scene: 2,
        }
    }
}

impl ConfigSection for MessageConfig {
    const NAME: &'static str = "message";

    fn issues(&self, _config: &Config) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        for (key, value) in [
            ("message.poll_interval_ms", self.poll_interval_ms as i64),
            ("message.batch_size", self.batch_size),
            ("message.lease_ms", self.lease_ms),
            ("message.max_attempts", i64::from(self.max_attempts)),
        ] {
            if value < 1 {
                issues.push(ConfigIssue::new(key, "must be at least 1"));
            }
        }
        if self.base_backoff_ms < 0 || self.max_backoff_ms < self.base_backoff_ms {
            issues.push(ConfigIssue::new(
                "message.max_backoff_ms",
                "must be at least message.base_backoff_ms, which must not be negative",
            ));
        }
        if !(1..=4).contains(&self.content_scene) {
            issues.push(ConfigIssue::new(
                "message.content_scene",
                "must be 1 (profile), 2 (comment), 3 (forum) or 4 (log)",
            ));
        }
        issues
    }
}
weapp::config_section!(MessageConfig);
