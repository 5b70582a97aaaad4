//! Logging set-up, with a filter that can be changed while running.

use std::sync::OnceLock;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use super::{LogFormat, ObserveConfig};
use crate::config::Config;

type SetFilter = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// Replaces the installed subscriber's filter (set by the first `init_*` call).
static SET_FILTER: OnceLock<SetFilter> = OnceLock::new();

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

/// Changes the log filter of the running process (a config reload does this);
/// an invalid filter is refused and the old one kept.
pub fn set_log_filter(filter: &str) -> Result<(), String> {
    EnvFilter::try_new(filter).map_err(|e| e.to_string())?;
    match SET_FILTER.get() {
        Some(set) => set(filter),
        None => Ok(()),
    }
}

fn init(config: &Config, to_stderr: bool) {
    // Checked when the configuration loaded; unreadable means defaults.
    let observe: std::sync::Arc<ObserveConfig> = config.get().unwrap_or_default();
    let format = match observe.log_format {
        LogFormat::Auto if !config.is_development() => LogFormat::Json,
        LogFormat::Auto => LogFormat::Pretty,
        other => other,
    };
    let config = &*observe;
    crate::observe::otel::install_propagator();
    let filter = || {
        EnvFilter::try_from_default_env()
            .or_else(|_| EnvFilter::try_new(&config.log_level))
            .unwrap_or_else(|_| EnvFilter::new("info"))
    };
    // Colours only on a terminal: piped logs (tests, journald, files) stay plain text.
    let ansi = if to_stderr {
        std::io::IsTerminal::is_terminal(&std::io::stderr())
    } else {
        std::io::IsTerminal::is_terminal(&std::io::stdout())
    };
    // Each format has its own handle type; the setter hides it.
    macro_rules! install {
        ($builder:expr) => {{
            let builder = $builder.with_env_filter(filter()).with_filter_reloading();
            let handle = builder.reload_handle();
            let subscriber = builder
                .finish()
                .with(crate::observe::otel::layer(&config.otel));
            if subscriber.try_init().is_ok() {
                let _ = SET_FILTER.set(Box::new(move |f: &str| {
                    let filter = EnvFilter::try_new(f).map_err(|e| e.to_string())?;
                    handle.reload(filter).map_err(|e| e.to_string())
                }));
            }
        }};
    }
    let base = tracing_subscriber::fmt().with_ansi(ansi);
    match (format, to_stderr) {
        (LogFormat::Json, false) => install!(base.json()),
        (LogFormat::Json, true) => install!(base.json().with_writer(std::io::stderr)),
        (_, false) => install!(base),
        (_, true) => install!(base.with_writer(std::io::stderr)),
    }
}
