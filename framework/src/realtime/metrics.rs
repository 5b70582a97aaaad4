//! The relay's metric families, process-wide (Prometheus' default registry, which
//! `GET /metrics` renders with the app's own families).

use std::sync::OnceLock;

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts};

fn register<T: prometheus::core::Collector + Clone + 'static>(metric: T) -> T {
    // Registration fails only for a duplicate name, which cannot happen here.
    let _ = prometheus::default_registry().register(Box::new(metric.clone()));
    metric
}

/// `realtime_connections`: open sockets on this instance.
pub(super) fn connections() -> &'static IntGauge {
    static FAMILY: OnceLock<IntGauge> = OnceLock::new();
    FAMILY.get_or_init(|| {
        register(
            IntGauge::new("realtime_connections", "Open WebSockets on this instance.")
                .expect("valid metric"),
        )
    })
}

/// `realtime_messages_in_total`: frames received from clients.
pub(super) fn messages_in() -> &'static IntCounter {
    static FAMILY: OnceLock<IntCounter> = OnceLock::new();
    FAMILY.get_or_init(|| {
        register(
            IntCounter::new(
                "realtime_messages_in_total",
                "Text frames received from WebSocket clients.",
            )
            .expect("valid metric"),
        )
    })
}

/// `realtime_messages_out_total`: frames queued to sockets.
pub(super) fn messages_out() -> &'static IntCounter {
    static FAMILY: OnceLock<IntCounter> = OnceLock::new();
    FAMILY.get_or_init(|| {
        register(
            IntCounter::new(
                "realtime_messages_out_total",
                "Pushes and room messages queued to WebSockets.",
            )
            .expect("valid metric"),
        )
    })
}

/// `realtime_dropped_total{reason}`: what the relay did not pass on: client frames
/// refused (`rate_limited`, `invalid_frame`, `forbidden`, ...) and frames for a
/// socket closed as `too_slow`.
pub(super) fn dropped(reason: &str) -> IntCounter {
    static FAMILY: OnceLock<IntCounterVec> = OnceLock::new();
    FAMILY
        .get_or_init(|| {
            register(
                IntCounterVec::new(
                    Opts::new(
                        "realtime_dropped_total",
                        "Client frames refused and frames not delivered, by reason.",
                    ),
                    &["reason"],
                )
                .expect("valid metric"),
            )
        })
        .with_label_values(&[reason])
}

/// `realtime_closed_total{reason}`: sockets closed, by close reason.
pub(super) fn closed(reason: &str) -> IntCounter {
    static FAMILY: OnceLock<IntCounterVec> = OnceLock::new();
    FAMILY
        .get_or_init(|| {
            register(
                IntCounterVec::new(
                    Opts::new(
                        "realtime_closed_total",
                        "WebSockets closed, by close reason.",
                    ),
                    &["reason"],
                )
                .expect("valid metric"),
            )
        })
        .with_label_values(&[reason])
}

/// `realtime_fanout_latency_seconds`: from another instance's append to the stream
/// to delivery here.
pub(super) fn fanout_latency() -> &'static Histogram {
    static FAMILY: OnceLock<Histogram> = OnceLock::new();
    FAMILY.get_or_init(|| {
        register(
            Histogram::with_opts(
                HistogramOpts::new(
                    "realtime_fanout_latency_seconds",
                    "Time from a push or room message on another instance to its delivery here.",
                )
                .buckets(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                ]),
            )
            .expect("valid metric"),
        )
    })
}

/// Registers every family, so each is rendered from the start, at zero.
pub(super) fn init() {
    connections();
    messages_in();
    messages_out();
    fanout_latency();
}
