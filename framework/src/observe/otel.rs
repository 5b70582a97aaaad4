//! OpenTelemetry trace context (W3C `traceparent` and `baggage`).
//!
//! Incoming requests: the `request` span takes the caller's trace as its parent.
//! Outgoing WeChat calls: each attempt runs in a client span whose context is
//! injected into the call's headers, so the sandbox (or WeChat, or a proxy) sees the
//! same trace id. With `observe.otel.enabled` the app's `tracing` spans become
//! OpenTelemetry spans, sampled parent-based with `observe.otel.sample_ratio` for new
//! traces; tests attach their own exporter (see `framework/tests/otel.rs`).

use opentelemetry::propagation::{Extractor, Injector, TextMapCompositePropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use serde::{Deserialize, Serialize};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// `[observe.otel]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtelConfig {
    /// Turn `tracing` spans into OpenTelemetry spans.
    pub enabled: bool,
    /// Share of new traces sampled (0 to 1); a caller's sampling decision is kept.
    pub sample_ratio: f64,
    /// `service.name` of the spans.
    pub service_name: String,
}

impl Default for OtelConfig {
    fn default() -> Self {
        OtelConfig {
            enabled: false,
            sample_ratio: 1.0,
            service_name: "weapp".into(),
        }
    }
}

/// Installs the W3C trace-context and baggage propagators (once per process).
pub fn install_propagator() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        opentelemetry::global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
            Box::new(TraceContextPropagator::new()),
            Box::new(BaggagePropagator::new()),
        ]));
    });
}

/// A tracer provider sampling parent-based with `config.sample_ratio` for roots.
pub fn provider(config: &OtelConfig) -> SdkTracerProvider {
    let ratio = config.sample_ratio.clamp(0.0, 1.0);
    SdkTracerProvider::builder()
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            ratio,
        ))))
        .build()
}

/// The `tracing` layer for `config`, or `None` when OpenTelemetry is off.
pub(crate) fn layer<S>(
    config: &OtelConfig,
) -> Option<tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::SdkTracer>>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    if !config.enabled {
        return None;
    }
    let tracer = provider(config).tracer(config.service_name.clone());
    Some(tracing_opentelemetry::layer().with_tracer(tracer))
}

struct HeaderExtractor<'a>(&'a actix_web::http::header::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct HeaderInjector<'a>(&'a mut reqwest::header::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            reqwest::header::HeaderName::from_bytes(key.as_bytes()),
            reqwest::header::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Makes `span` a child of the trace named in the incoming headers, if any.
pub(crate) fn adopt_incoming(span: &tracing::Span, headers: &actix_web::http::header::HeaderMap) {
    if !headers.contains_key("traceparent") {
        return;
    }
    let parent =
        opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)));
    // Fails only when no OpenTelemetry layer is installed: nothing to adopt then.
    let _ = span.set_parent(parent);
}

/// The trace-context headers for a call made inside `span`.
pub(crate) fn outgoing_headers(span: &tracing::Span) -> reqwest::header::HeaderMap {
    let mut headers = reqwest::header::HeaderMap::new();
    let context = span.context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&context, &mut HeaderInjector(&mut headers))
    });
    headers
}
