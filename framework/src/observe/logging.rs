//! Logging set-up.

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, ObserveConfig};

/// Installs the global subscriber for a server: `observe.log_level` (or `RUST_LOG`)
/// as the filter, pretty or JSON lines on stdout. A second call (tests start many
/// apps) is a no-op.
pub fn init_logging(config: &ObserveConfig) {
    init(config, false)
}

/// As [`init_logging`], but logs go to stderr so a command's own output on stdout
/// (`migrate`, `crypto rotate`) stays clean.
pub fn init_cli_logging(config: &ObserveConfig) {
    init(config, true)
}

fn init(config: &ObserveConfig, to_stderr: bool) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: piped logs (tests, journald, files) stay plain text.
    let ansi = if to_stderr {
        std::io::IsTerminal::is_terminal(&std::io::stderr())
    } else {
        std::io::IsTerminal::is_terminal(&std::io::stdout())
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    let _ = match (config.log_format, to_stderr) {
        (LogFormat::Json, false) => builder.json().try_init(),
        (LogFormat::Json, true) => builder.json().with_writer(std::io::stderr).try_init(),
        (LogFormat::Pretty, false) => builder.try_init(),
        (LogFormat::Pretty, true) => builder.with_writer(std::io::stderr).try_init(),
    };
}
