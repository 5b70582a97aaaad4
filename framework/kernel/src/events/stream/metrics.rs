//! The relay's metric families, process-wide (registered in Prometheus' default
//! registry, which `GET /metrics` renders with the app's own families).

use std::sync::OnceLock;

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
};

fn register<T: prometheus::core::Collector + Clone + 'static>(metric: T) -> T {
    // Registration fails only for a duplicate name, which cannot happen here.
    let _ = prometheus::default_registry().register(Box::new(metric.clone()));
    metric
}

/// `events_relay_appended_total`: shared events appended to the stream.
pub(super) fn appended() -> &'static IntCounter {
    static FAMILY: OnceLock<IntCounter> = OnceLock::new();
    FAMILY.get_or_init(|| {
        register(
            IntCounter::new(
                "events_relay_appended_total",
                "Shared events appended to the Redis stream.",
            )
            .expect("valid metric"),
        )
    })
}

/// `events_relay_handled_total{group,outcome}`: entries a group's consumers took
/// (`handled`), whose handler failed (`failed`, retried later), gave up on (`dead`)
/// or found trimmed before handling them (`lost`).
pub(super) fn handled(group: &str, outcome: &str) -> IntCounter {
    static FAMILY: OnceLock<IntCounterVec> = OnceLock::new();
    FAMILY
        .get_or_init(|| {
            register(
                IntCounterVec::new(
                    Opts::new(
                        "events_relay_handled_total",
                        "Shared events by consumer group and outcome.",
                    ),
                    &["group", "outcome"],
                )
                .expect("valid metric"),
            )
        })
        .with_label_values(&[group, outcome])
}

/// `events_relay_latency_seconds{group}`: from append to handled.
pub(super) fn latency(group: &str) -> Histogram {
    static FAMILY: OnceLock<HistogramVec> = OnceLock::new();
    FAMILY
        .get_or_init(|| {
            register(
                HistogramVec::new(
                    HistogramOpts::new(
                        "events_relay_latency_seconds",
                        "Time from a shared event's append to its handling, by group.",
                    )
                    .buckets(vec![
                        0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0,
                    ]),
                    &["group"],
                )
                .expect("valid metric"),
            )
        })
        .with_label_values(&[group])
}

/// `events_stream_lag{group}`: entries the group has not read yet.
pub(super) fn lag(group: &str) -> IntGauge {
    static FAMILY: OnceLock<IntGaugeVec> = OnceLock::new();
    FAMILY
        .get_or_init(|| {
            let opts = Opts::new(
                "events_stream_lag",
                "Shared events appended but not yet read by the group.",
            );
            register(IntGaugeVec::new(opts, &["group"]).expect("valid metric"))
        })
        .with_label_values(&[group])
}

/// `events_stream_pending{group}`: entries read and not acknowledged yet.
pub(super) fn pending(group: &str) -> IntGauge {
    static FAMILY: OnceLock<IntGaugeVec> = OnceLock::new();
    FAMILY
        .get_or_init(|| {
            let opts = Opts::new(
                "events_stream_pending",
                "Shared events read by a consumer of the group and not acknowledged yet.",
            );
            register(IntGaugeVec::new(opts, &["group"]).expect("valid metric"))
        })
        .with_label_values(&[group])
}
