//! Keeps an app's copy of the mini-program SDK current with its routes.

use std::path::Path;

use super::TestApp;
use crate::sdk::Sdk;

/// Set (to anything but `0`) to rewrite a stale SDK instead of failing.
const UPDATE: &str = "WEAPP_SDK_UPDATE";

impl TestApp {
    /// Fails unless the SDK in `dir` is what `cargo run -- sdk <dir>` writes for the
    /// routes this app serves. A folder that does not exist yet is written (a freshly
    /// generated project has none); with `WEAPP_SDK_UPDATE=1` a stale one is rewritten.
    pub async fn assert_sdk_current(&self, dir: &Path) {
        let doc: serde_json::Value = self
            .client
            .get(self.url("/api/openapi.json"))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .expect("GET /api/openapi.json")
            .json()
            .await
            .expect("a JSON OpenAPI document");
        let sdk = Sdk::for_document(&doc);
        let update = std::env::var(UPDATE).is_ok_and(|v| !v.is_empty() && v != "0");
        if update || !dir.exists() {
            sdk.write(dir)
                .unwrap_or_else(|e| panic!("writing the SDK to {}: {e}", dir.display()));
            eprintln!("wrote the mini-program SDK to {}", dir.display());
            return;
        }
        let stale = sdk.stale_files(dir);
        assert!(
            stale.is_empty(),
            "the mini-program SDK in {} does not match the app's routes ({} differ): run \
             `cargo run -- sdk {}`, or the tests with {UPDATE}=1, and commit the result",
            dir.display(),
            stale.join(", "),
            dir.display(),
        );
    }
}
