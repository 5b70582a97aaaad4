//! Logging set-up.

use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};

/// Installs the global subscriber for a server: `observe.log_level` (or `RUST_LOG`)
/// as the filter, pretty or JSON lines on stdout (`observe.log_format`; `auto` is
/// JSON in production). A second call (tests start many apps) is a no-op.
pub fn init_logging(config: &Config) {
    init(config, false)
}

/// As [`init_logging`], but logs go to stderr so a command's own output on stdout
/// (`migrate`, `crypto rotate`) stays clean.
pub fn init_cli_logging(config: &Config) {
    init(config, true)
}

fn init(config: &Config, to_stderr: bool) {
    let format = match config.observe.log_format {
        LogFormat::Auto if config.environment == "production" => LogFormat::Json,
        LogFormat::Auto => LogFormat::Pretty,
        other => other,
    };
    let config = &config.observe;
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
    let _ = match (format, to_stderr) {
        (LogFormat::Json, false) => builder.json().try_init(),
        (LogFormat::Json, true) => builder.json().with_writer(std::io::stderr).try_init(),
        (_, false) => builder.try_init(),
        (_, true) => builder.with_writer(std::io::stderr).try_init(),
    };
}
