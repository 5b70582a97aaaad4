//! `[observe]`: logging, metrics, profiling and OpenTelemetry settings.

use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigIssue, ConfigSection};

/// `[observe]`: logging.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObserveConfig {
    /// A `tracing` filter, e.g. `info` or `info,weapp=debug`; `RUST_LOG` overrides it.
    pub log_level: String,
    /// `auto` (JSON in production, pretty elsewhere), `pretty` or `json`.
    pub log_format: LogFormat,
    /// Serve `GET /metrics` (Prometheus text format).
    pub metrics_enabled: bool,
    /// When set, `/metrics` requires `Authorization: Bearer <token>`.
    pub metrics_token: crate::config::Secret,
    /// Serve `/metrics` on this port of `server.host` instead of the API port (which
    /// then answers 404 there), e.g. to keep it off the public ingress; `0` picks a
    /// free port.
    pub metrics_port: Option<u16>,
    /// Serve the admin-only CPU profiler at `/debug/pprof/profile` (off by default;
    /// needs weapp built with the `profiling` feature).
    pub profiling_enabled: bool,
    /// OpenTelemetry spans and sampling.
    pub otel: super::otel::OtelConfig,
}

impl Default for ObserveConfig {
    fn default() -> Self {
        ObserveConfig {
            log_level: "info".into(),
            log_format: LogFormat::Auto,
            metrics_enabled: true,
            metrics_token: crate::config::Secret::default(),
            metrics_port: None,
            profiling_enabled: false,
            otel: super::otel::OtelConfig::default(),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// JSON outside development (any `WEAPP_ENV` but `development` and `test`),
    /// human-readable in development.
    Auto,
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

impl ConfigSection for ObserveConfig {
    const NAME: &'static str = "observe";

    fn issues(&self, _config: &Config) -> Vec<ConfigIssue> {
        let mut issues: Vec<ConfigIssue> = self
            .otel
            .problems()
            .into_iter()
            .map(|problem| ConfigIssue::new("observe.otel", problem))
            .collect();
        if self.profiling_enabled && !cfg!(feature = "profiling") {
            issues.push(ConfigIssue::new(
                "observe.profiling_enabled",
                "needs weapp built with the `profiling` feature",
            ));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log_level) {
            issues.push(ConfigIssue::new(
                "observe.log_level",
                format!("not a valid filter: {e}"),
            ));
        }
        issues
    }
}
crate::config_section!(ObserveConfig);
