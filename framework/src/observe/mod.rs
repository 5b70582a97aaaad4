//! Observability: logging set-up ([`init_logging`]) and Prometheus metrics
//! ([`metrics`] for the app, [`upstream`] for WeChat and the key-value store).

mod config;
mod logging;
pub mod metrics;
pub mod otel;
pub mod rate;
pub mod upstream;

pub use config::{LogFormat, ObserveConfig};
pub use logging::{init_cli_logging, init_logging, set_log_filter};
