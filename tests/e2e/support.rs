//! Small helpers the end-to-end tests share.

use std::time::Duration;

use serde_json::Value;

/// The JSON body of `response`, after asserting its status (the body is in the
/// failure message).
pub(crate) async fn json_of(response: reqwest::Response, status: u16) -> Value {
    let got = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(got, status, "{body}");
    body
}

/// Waits until `check` holds, polling every 20 ms; panics after 5 s naming `what`.
pub(crate) async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..250 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting until {what}");
}
