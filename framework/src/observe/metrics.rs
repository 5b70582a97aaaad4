//! Prometheus metrics: `GET /metrics` in the text exposition format.
//!
//! - `http_requests_total{method,route,status}`, `http_request_duration_seconds{method,route}`
//!   (buckets from 1 ms to 5 s), `http_requests_in_flight`.
//! - `db_pool_connections`, `db_pool_idle_connections`, `db_pool_waited_checkouts`,
//!   `db_pool_checkout_timeouts` (read at scrape time, summed over every pool).
//! - `http_rejected_bodies_total{route,reason}`: anonymous requests refused for
//!   their body (an unknown field); counted here, not written to the audit log.
//! - WeChat and key-value store families from [`super::upstream`].
//!
//! `route` is the matched route pattern (`/api/orders/{id}`), never the raw path, and
//! every path that matches no route is recorded as `unmatched`, so a scanner cannot
//! create unbounded series; methods outside the standard ones count as `OTHER`.
//! Set `observe.metrics_token` to require `Authorization: Bearer <token>` on `/metrics`.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{AUTHORIZATION, ContentType};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::{AppContext, Error};

/// Latency buckets in seconds, 1 ms to 5 s.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The app's metric families, kept in the [`AppContext`].
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    in_flight: IntGauge,
    rejected: IntCounterVec,
    db_connections: IntGauge,
    db_idle: IntGauge,
    replica_lag: IntGaugeVec,
    replica_usable: IntGaugeVec,
    db_waited: IntGauge,
    db_timed_out: IntGauge,
}

impl Metrics {
    /// Creates and registers every family.
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by method, route pattern and status.",
            ),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by route pattern.",
            )
            .buckets(BUCKETS.to_vec()),
            &["method", "route"],
        )
        .expect("valid metric");
        let in_flight = IntGauge::new("http_requests_in_flight", "Requests being handled now.")
            .expect("valid metric");
        let rejected = IntCounterVec::new(
            Opts::new(
                "http_rejected_bodies_total",
                "Anonymous requests refused for their body, by route pattern and reason.",
            ),
            &["route", "reason"],
        )
        .expect("valid metric");
        let db_connections = IntGauge::new("db_pool_connections", "Open database connections.")
            .expect("valid metric");
        let db_idle = IntGauge::new("db_pool_idle_connections", "Idle database connections.")
            .expect("valid metric");
        let db_waited = IntGauge::new(
            "db_pool_waited_checkouts",
            "Checkouts that waited for a connection (cumulative since start).",
        )
        .expect("valid metric");
        let db_timed_out = IntGauge::new(
            "db_pool_checkout_timeouts",
            "Checkouts that gave up waiting (cumulative since start).",
        )
        .expect("valid metric");
        let replica_lag = IntGaugeVec::new(
            Opts::new(
                "db_replica_lag_ms",
                "Replication lag of each read replica at its last check (-1: unknown).",
            ),
            &["replica"],
        )
        .expect("valid metric");
        let replica_usable = IntGaugeVec::new(
            Opts::new(
                "db_replica_usable",
                "1 while reads go to the replica, 0 while they go to the primary instead.",
            ),
            &["replica"],
        )
        .expect("valid metric");
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(replica_lag.clone()),
            Box::new(replica_usable.clone()),
            Box::new(duration.clone()),
            Box::new(in_flight.clone()),
            Box::new(rejected.clone()),
            Box::new(db_connections.clone()),
            Box::new(db_idle.clone()),
            Box::new(db_waited.clone()),
            Box::new(db_timed_out.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        Metrics {
            registry,
            requests,
            duration,
            in_flight,
            rejected,
            db_connections,
            db_idle,
            replica_lag,
            replica_usable,
            db_waited,
            db_timed_out,
        }
    }

    /// Counts an anonymous request refused for its body. `route` is a route pattern
    /// (or `unmatched`), so the series stay bounded.
    pub fn record_rejection(&self, route: &str, reason: &str) {
        self.rejected.with_label_values(&[route, reason]).inc();
    }

    /// The counter and histogram of one (method, route, status), looked up once per
    /// worker thread: label hashing under the families' locks costs more than the
    /// request on a trivial route.
    fn series(
        &self,
        method: &'static str,
        route: String,
        status: u16,
    ) -> (prometheus::IntCounter, prometheus::Histogram) {
        type Key = (usize, &'static str, String, u16);
        thread_local! {
            static SERIES: std::cell::RefCell<std::collections::HashMap<Key, (prometheus::IntCounter, prometheus::Histogram)>> =
                std::cell::RefCell::new(std::collections::HashMap::new());
        }
        // The registry's address keys the cache, so apps in one process stay apart.
        let key = (self as *const Metrics as usize, method, route, status);
        SERIES.with(|cache| {
            cache
                .borrow_mut()
                .entry(key)
                .or_insert_with_key(|(_, method, route, status)| {
                    (
                        self.requests.with_label_values(&[
                            method,
                            route.as_str(),
                            &status.to_string(),
                        ]),
                        self.duration.with_label_values(&[method, route.as_str()]),
                    )
                })
                .clone()
        })
    }

    /// The registry, for plugins that add their own families.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Every family in the Prometheus text format.
    pub fn render(&self, ctx: &AppContext) -> String {
        let pools = ctx.db().pool_stats();
        self.db_connections.set(i64::from(pools.connections));
        self.db_idle.set(i64::from(pools.idle));
        self.db_waited
            .set(i64::try_from(pools.waited).unwrap_or(i64::MAX));
        self.db_timed_out
            .set(i64::try_from(pools.timed_out).unwrap_or(i64::MAX));
        for replica in ctx.db().replica_standings() {
            let labels = [replica.name.as_str()];
            self.replica_lag
                .with_label_values(&labels)
                .set(replica.lag_ms.unwrap_or(-1));
            self.replica_usable
                .with_label_values(&labels)
                .set(i64::from(replica.usable));
        }
        // Registered on first use: render them from the start, at zero.
        crate::observe::upstream::upstream();
        crate::kv::metrics::kv_errors();
        let mut families = self.registry.gather();
        families.extend(prometheus::default_registry().gather());
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&families, &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Middleware: counts and times every request under its route pattern.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(metrics) = req
        .app_data::<web::Data<AppContext>>()
        .and_then(|ctx| ctx.get::<Metrics>())
    else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    // Arbitrary method tokens are accepted by HTTP, so they must not become labels.
    let method = match req.method().as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    };
    let started = Instant::now();
    metrics.in_flight.inc();
    let result = next.call(req).await;
    metrics.in_flight.dec();
    let (route, status) = match &result {
        Ok(res) => (
            res.request()
                .match_pattern()
                .unwrap_or_else(|| "unmatched".to_owned()),
            res.status().as_u16(),
        ),
        Err(err) => (
            "unmatched".to_owned(),
            err.as_response_error().status_code().as_u16(),
        ),
    };
    let (counter, histogram) = metrics.series(method, route, status);
    counter.inc();
    histogram.observe(started.elapsed().as_secs_f64());
    Ok(result?.map_into_boxed_body())
}

/// Where `/metrics` is served when `observe.metrics_port` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsAddr(pub std::net::SocketAddr);

/// `GET /metrics`.
pub async fn endpoint(ctx: AppContext, req: HttpRequest) -> Result<HttpResponse, Error> {
    if let Some(MetricsAddr(addr)) = ctx.get::<MetricsAddr>().as_deref().copied()
        && req.app_config().local_addr().port() != addr.port()
    {
        // Served on its own port only.
        return Err(Error::not_found("metrics are served on another port"));
    }
    let observe = ctx.config().get::<super::ObserveConfig>()?;
    let token = &observe.metrics_token;
    if !token.is_empty() {
        let given = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !given.is_some_and(|given| token.matches(given)) {
            return Err(Error::http(
                actix_web::http::StatusCode::UNAUTHORIZED,
                "invalid_token",
                "/metrics needs the metrics token",
            ));
        }
    }
    let metrics = ctx
        .get::<Metrics>()
        .ok_or_else(|| Error::not_found("metrics are disabled"))?;
    Ok(HttpResponse::Ok()
        .content_type(ContentType(
            "text/plain; version=0.0.4; charset=utf-8"
                .parse()
                .expect("valid mime"),
        ))
        .body(metrics.render(&ctx)))
}
