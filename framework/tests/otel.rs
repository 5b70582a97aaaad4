//! OpenTelemetry propagation, in its own test binary because it installs the
//! process's global subscriber with an in-memory exporter before any app starts.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider};
use tracing_subscriber::layer::SubscriberExt;
use weapp::testing::TestApp;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

#[tokio::test]
async fn an_incoming_trace_continues_into_the_wechat_call() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            1.0,
        ))))
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    tracing::subscriber::set_global_default(subscriber).expect("first subscriber");
    weapp::observe::otel::install_propagator();

    let app = TestApp::builder().spawn().await;
    let (code, _, _) = app.sandbox_login(Some("o_traced")).await;
    let response = app
        .client
        .post(app.url("/api/auth/login"))
        .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN}-01"))
        .header("baggage", "tenant=shop-1")
        .json(&serde_json::json!({ "code": code }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // The sandbox, standing in for WeChat, received the same trace.
    let seen: serde_json::Value = app
        .client
        .get(app.url("/__sandbox/traceparents"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let upstream = seen["traceparent"]["/sns/jscode2session"]
        .as_str()
        .expect("traceparent sent to WeChat");
    assert_eq!(
        seen["baggage"]["/sns/jscode2session"], "tenant=shop-1",
        "baggage travels too"
    );
    assert!(
        upstream.starts_with(&format!("00-{TRACE_ID}-")),
        "{upstream}"
    );
    assert!(
        !upstream.contains(CALLER_SPAN),
        "a new span id for the client span"
    );
    app.stop().await.unwrap();

    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let in_trace: Vec<_> = spans
        .iter()
        .filter(|s| s.span_context.trace_id().to_string() == TRACE_ID)
        .collect();
    let server = in_trace
        .iter()
        .find(|s| s.name == "request" && s.parent_span_id.to_string() == CALLER_SPAN)
        .unwrap_or_else(|| panic!("no server span under the caller's in {in_trace:?}"));
    let client = spans
        .iter()
        .find(|s| s.name == "wechat" && s.span_context.trace_id().to_string() == TRACE_ID)
        .expect("a client span for the WeChat call");
    assert_eq!(
        client.parent_span_id,
        server.span_context.span_id(),
        "a child of the server span"
    );
    assert_eq!(client.span_kind, opentelemetry::trace::SpanKind::Client);
    assert!(upstream.contains(&client.span_context.span_id().to_string()));
    // The embedded sandbox is served by the same app: its request span continues
    // the trace under the client span, as WeChat's side of the call would.
    assert!(
        in_trace
            .iter()
            .any(|s| s.name == "request" && s.parent_span_id == client.span_context.span_id()),
        "the upstream request joins the trace"
    );
}
