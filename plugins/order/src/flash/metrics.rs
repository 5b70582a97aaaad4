//! Flash-sale metrics, process-wide in Prometheus' default registry:
//!
//! - `order_flash_reservations_total{outcome}`: answers to flash-sale orders
//!   (`reserved`, `replayed`, `sold_out`, `limit`, `busy`);
//! - `order_flash_written_total{result}`: reservations written to the database
//!   (`pending`, or `refused` when the database had no unit left for them);
//! - `order_flash_queued`: reservations not yet written, at the last sync;
//! - `order_flash_syncs_total`: syncs of a sale's counters from the database;
//! - `order_flash_reserve_batch_size`: reservations per call of the reservation
//!   script (its count: the calls).

use std::sync::OnceLock;

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts};

/// An answer to a flash-sale order.
#[derive(Debug, Clone, Copy)]
pub(super) enum Outcome {
    Reserved,
    Replayed,
    SoldOut,
    Limit,
    Busy,
}

struct FlashMetrics {
    reservations: IntCounterVec,
    written: IntCounterVec,
    queued: IntGauge,
    syncs: IntCounter,
    batch_size: Histogram,
}

fn metrics() -> &'static FlashMetrics {
    static METRICS: OnceLock<FlashMetrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let metrics = FlashMetrics {
            reservations: IntCounterVec::new(
                Opts::new(
                    "order_flash_reservations_total",
                    "Answers to flash-sale orders, by outcome.",
                ),
                &["outcome"],
            )
            .expect("valid metric"),
            written: IntCounterVec::new(
                Opts::new(
                    "order_flash_written_total",
                    "Flash-sale reservations written to the database: pending, or refused for lack of units.",
                ),
                &["result"],
            )
            .expect("valid metric"),
            queued: IntGauge::new(
                "order_flash_queued",
                "Flash-sale reservations not yet written to the database, at the last sync.",
            )
            .expect("valid metric"),
            syncs: IntCounter::new(
                "order_flash_syncs_total",
                "Syncs of a flash sale's Redis counters from the database.",
            )
            .expect("valid metric"),
            batch_size: Histogram::with_opts(
                HistogramOpts::new(
                    "order_flash_reserve_batch_size",
                    "Flash-sale reservations per call of the reservation script.",
                )
                .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]),
            )
            .expect("valid metric"),
        };
        let registry = prometheus::default_registry();
        // Registration fails only for a duplicate name, which cannot happen here.
        let _ = registry.register(Box::new(metrics.reservations.clone()));
        let _ = registry.register(Box::new(metrics.written.clone()));
        let _ = registry.register(Box::new(metrics.queued.clone()));
        let _ = registry.register(Box::new(metrics.syncs.clone()));
        let _ = registry.register(Box::new(metrics.batch_size.clone()));
        metrics
    })
}

/// Counts one answer.
pub(super) fn count(outcome: Outcome) {
    let label = match outcome {
        Outcome::Reserved => "reserved",
        Outcome::Replayed => "replayed",
        Outcome::SoldOut => "sold_out",
        Outcome::Limit => "limit",
        Outcome::Busy => "busy",
    };
    metrics().reservations.with_label_values(&[label]).inc();
}

/// Counts written reservations.
pub(super) fn written(pending: usize, refused: usize) {
    let m = metrics();
    m.written
        .with_label_values(&["pending"])
        .inc_by(pending as u64);
    m.written
        .with_label_values(&["refused"])
        .inc_by(refused as u64);
}

/// Reports the reservations not yet written.
pub(super) fn queued(n: i64) {
    metrics().queued.set(n);
}

/// Counts one sync of a sale.
pub(super) fn synced() {
    metrics().syncs.inc();
}

/// Counts one call of the reservation script with `n` reservations.
pub(super) fn reserve_call(n: usize) {
    metrics().batch_size.observe(n as f64);
}
