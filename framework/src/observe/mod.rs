//! Observability: logging set-up ([`init_logging`]) and Prometheus metrics
//! ([`metrics`]).

mod logging;
pub mod metrics;

pub use logging::{init_cli_logging, init_logging};
