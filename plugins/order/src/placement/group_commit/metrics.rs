//! Group commit's metrics, process-wide in Prometheus' default registry (served by
//! `GET /metrics` with the app's own families):
//!
//! - `order_batch_orders`: orders per committed batch transaction (its `_sum` over
//!   its `_count` is the average an operator tunes `order.group_commit` by);
//! - `order_batches_rolled_back_total`: batches that could not commit whole, whose
//!   orders were then placed one by one (many of them: stock running out, or
//!   clients reusing keys at the same moment).

use std::sync::OnceLock;

use prometheus::{Histogram, HistogramOpts, IntCounter};

/// The families.
pub(crate) struct GroupCommitMetrics {
    /// `order_batch_orders`.
    pub batch_orders: Histogram,
    /// `order_batches_rolled_back_total`.
    pub rolled_back: IntCounter,
}

/// Batch sizes up to the largest `order.group_commit.max_orders` worth using.
const BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// The families, registered on first use.
pub(crate) fn metrics() -> &'static GroupCommitMetrics {
    static METRICS: OnceLock<GroupCommitMetrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let metrics = GroupCommitMetrics {
            batch_orders: Histogram::with_opts(
                HistogramOpts::new(
                    "order_batch_orders",
                    "Orders committed per group-commit transaction.",
                )
                .buckets(BUCKETS.to_vec()),
            )
            .expect("valid metric"),
            rolled_back: IntCounter::new(
                "order_batches_rolled_back_total",
                "Group-commit batches that rolled back; their orders were placed one by one.",
            )
            .expect("valid metric"),
        };
        let registry = prometheus::default_registry();
        // Registration fails only for a duplicate name, which cannot happen here.
        let _ = registry.register(Box::new(metrics.batch_orders.clone()));
        let _ = registry.register(Box::new(metrics.rolled_back.clone()));
        metrics
    })
}
