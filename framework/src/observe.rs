//! Logging set-up. (Request spans, metrics and tracing export build on this.)

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, ObserveConfig};

/// Installs the global subscriber: `observe.log_level` (or `RUST_LOG`) as the filter,
/// pretty or JSON lines. A second call (tests start many apps) is a no-op.
pub fn init_logging(config: &ObserveConfig) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: piped logs (tests, journald, files) stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    let _ = match config.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}
