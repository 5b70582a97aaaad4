//! Metrics of WeChat, process-wide (the WeChat client has no app context):
//! registered in Prometheus' default registry and rendered by `GET /metrics` with
//! the app's own families. The key-value store counts its own errors
//! ([`crate::kv::metrics`]).
//!
//! - `wechat_api_requests_total{api,errcode}`: every WeChat call attempt; `errcode`
//!   is WeChat's code (`0` for success), or `http_<status>`, `timeout`, `transport`,
//!   `unexpected`.
//! - `wechat_api_request_duration_seconds{api}`: their latency.
//! - `wechat_access_token_refreshes_total`: access tokens fetched from WeChat.

use std::sync::OnceLock;

use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts};

/// The dependency metric families.
pub struct UpstreamMetrics {
    /// `wechat_api_requests_total{api,errcode}`.
    pub wechat_requests: IntCounterVec,
    /// `wechat_api_request_duration_seconds{api}`.
    pub wechat_duration: HistogramVec,
    /// `wechat_access_token_refreshes_total`.
    pub token_refreshes: IntCounter,
}

/// Latency buckets in seconds, 5 ms to 10 s (WeChat is a remote API).
const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process-wide families, registered on first use.
pub fn upstream() -> &'static UpstreamMetrics {
    static METRICS: OnceLock<UpstreamMetrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let metrics = UpstreamMetrics {
            wechat_requests: IntCounterVec::new(
                Opts::new(
                    "wechat_api_requests_total",
                    "WeChat API call attempts by API and errcode.",
                ),
                &["api", "errcode"],
            )
            .expect("valid metric"),
            wechat_duration: HistogramVec::new(
                HistogramOpts::new(
                    "wechat_api_request_duration_seconds",
                    "WeChat API call latency.",
                )
                .buckets(BUCKETS.to_vec()),
                &["api"],
            )
            .expect("valid metric"),
            token_refreshes: IntCounter::new(
                "wechat_access_token_refreshes_total",
                "Access tokens fetched from WeChat.",
            )
            .expect("valid metric"),
        };
        let registry = prometheus::default_registry();
        // Registration fails only for a duplicate name, which cannot happen here.
        let _ = registry.register(Box::new(metrics.wechat_requests.clone()));
        let _ = registry.register(Box::new(metrics.wechat_duration.clone()));
        let _ = registry.register(Box::new(metrics.token_refreshes.clone()));
        metrics
    })
}

/// Records one WeChat call attempt.
pub fn record_wechat_call(api: &'static str, errcode: &str, elapsed: std::time::Duration) {
    let metrics = upstream();
    metrics
        .wechat_requests
        .with_label_values(&[api, errcode])
        .inc();
    metrics
        .wechat_duration
        .with_label_values(&[api])
        .observe(elapsed.as_secs_f64());
}
