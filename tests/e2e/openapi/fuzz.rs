//! A schema-driven contract fuzzer (schemathesis) against the shop, with a valid
//! user token and admin token: every operation gets generated valid and invalid
//! requests; none may answer a server error (5xx) and every answer must match the
//! schema the document gives for its status.

use std::path::PathBuf;
use std::process::Command;

use weapp::testing::TestApp;

const ADMIN_TOKEN: &str = "fuzz-admin-token-0123456789abcdef";

/// `schemathesis` beside the test Python `tests/setup.sh` prepared.
fn schemathesis() -> PathBuf {
    let python = std::env::var("WEAPP_TEST_PYTHON").expect(
        "WEAPP_TEST_PYTHON: the Python with tests/requirements.txt; run the suite \
         through tests/run.sh, which installs it",
    );
    PathBuf::from(python).with_file_name("schemathesis")
}

#[tokio::test]
async fn generated_requests_get_no_server_error_and_answers_match_the_document() {
    let app = TestApp::builder()
        .set("plugins.disabled", ["probe"])
        .set("auth.admin_tokens.fuzz", ADMIN_TOKEN)
        // Payments configured (WeChat Pay's sandbox), as a shop runs: a refund of
        // an unknown or unpaid order is then the client's error, not a 503.
        .set("pay.merchants.shop.mchid", "1900000109")
        .set("wechat.push.token", "fuzztoken")
        .set(
            "wechat.push.encoding_aes_key",
            "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        )
        .spawn()
        .await;
    let orders = app.ctx.get::<weapp_order::Orders>().unwrap();
    let product = weapp_order::NewProduct {
        name: "模糊测试".into(),
        description: String::new(),
        price_fen: 100,
        stock: 1_000,
        active: true,
    };
    orders.seed_products(&[product]).await.unwrap();
    let (token, _) = app.login("o_contract_fuzzer").await;

    let document = app.url("/api/openapi.json");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(schemathesis())
            .args(["run", &document])
            // No 5xx; answers, their status and content type as documented; what the
            // document calls invalid (a constraint broken, a required header left
            // out) refused with a 4xx; a route that needs credentials refuses a call
            // without them.
            .args([
                "--checks",
                "not_a_server_error,response_schema_conformance,status_code_conformance,\
                 content_type_conformance,negative_data_rejection,missing_required_header,\
                 ignored_auth",
            ])
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .args(["--header", &format!("X-Admin-Token: {ADMIN_TOKEN}")])
            // The profiler samples for seconds per call; the WebSocket upgrade is
            // exercised by its own tests.
            .args(["--exclude-path-regex", "^/(debug/.*|ws)$"])
            .args(["--phases", "examples,coverage,fuzzing"])
            .args([
                "--max-examples",
                "25",
                "--seed",
                "20261130",
                "--workers",
                "1",
            ])
            .output()
    })
    .await
    .unwrap()
    .expect("schemathesis runs");
    app.stop().await.unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the contract fuzzer found problems:\n{report}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains("Tested: "), "{report}");
    // The figures of the run, in the test's output.
    for line in report
        .lines()
        .filter(|l| l.contains("Tested:") || l.contains("generated"))
    {
        println!("{}", line.trim());
    }
}
