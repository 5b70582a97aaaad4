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
    /// OTLP/HTTP endpoint spans are exported to, e.g. `http://collector:4318/v1/traces`
    /// (needs weapp built with the `otlp` feature); none: spans are only propagated.
    pub otlp_endpoint: Option<String>,
}

impl Default for OtelConfig {
    fn default() -> Self {
        OtelConfig {
            enabled: false,
            sample_ratio: 1.0,
            service_name: "weapp".into(),
            otlp_endpoint: None,
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

impl OtelConfig {
    /// Problems with the values, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            out.push("observe.otel.sample_ratio must be between 0 and 1".to_owned());
        }
        if self.otlp_endpoint.is_some() && !cfg!(feature = "otlp") {
            out.push(
                "observe.otel.otlp_endpoint needs weapp built with the `otlp` feature".to_owned(),
            );
        }
        out
    }
}

/// A tracer provider sampling parent-based with `config.sample_ratio` for new
/// traces, exporting over OTLP when an endpoint is configured (feature `otlp`).
pub fn provider(config: &OtelConfig) -> SdkTracerProvider {
    let ratio = config.sample_ratio.clamp(0.0, 1.0);
    let builder = SdkTracerProvider::builder().with_sampler(Sampler::ParentBased(Box::new(
        Sampler::TraceIdRatioBased(ratio),
    )));
    #[cfg(feature = "otlp")]
    let builder = match &config.otlp_endpoint {
        Some(endpoint) => {
            use opentelemetry_otlp::WithExportConfig;
            match opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(endpoint.clone())
                .build()
            {
                Ok(exporter) => builder.with_batch_exporter(exporter),
                Err(e) => {
                    tracing::error!(error = %e, "OTLP exporter unavailable; spans are not exported");
                    builder
                }
            }
        }
        None => builder,
    };
    builder.build()
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

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{
        Span as _, SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, Tracer,
    };

    fn sampled(provider: &SdkTracerProvider, parent: Option<bool>) -> bool {
        let tracer = provider.tracer("test");
        let cx = match parent {
            None => opentelemetry::Context::new(),
            Some(sampled) => {
                opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
                    TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
                    SpanId::from_hex("00f067aa0ba902b7").unwrap(),
                    if sampled {
                        TraceFlags::SAMPLED
                    } else {
                        TraceFlags::default()
                    },
                    true,
                    TraceState::default(),
                ))
            }
        };
        let span = tracer.start_with_context("s", &cx);
        span.span_context().is_sampled()
    }

    #[test]
    fn sampling_follows_the_parent_and_the_ratio_for_new_traces() {
        let none = provider(&OtelConfig {
            enabled: true,
            sample_ratio: 0.0,
            ..Default::default()
        });
        assert!(!sampled(&none, None), "ratio 0: new traces are not sampled");
        assert!(
            sampled(&none, Some(true)),
            "a sampled caller keeps its trace sampled"
        );
        let all = provider(&OtelConfig {
            enabled: true,
            sample_ratio: 1.0,
            ..Default::default()
        });
        assert!(sampled(&all, None));
        assert!(
            !sampled(&all, Some(false)),
            "an unsampled caller stays unsampled"
        );
    }

    #[test]
    fn bad_settings_are_named() {
        let config = OtelConfig {
            sample_ratio: 1.5,
            ..Default::default()
        };
        assert_eq!(config.problems().len(), 1);
    }
}
