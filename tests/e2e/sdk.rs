//! The mini-program SDK (`framework/sdk`) under Node against the shop: login, the
//! refresh race, a lost order answer, signing, payment, errors (`framework/sdk/test`),
//! and its files against what `weapp::sdk` writes for the shop's live document.

use std::path::Path;
use std::process::Command;

use weapp::testing::TestApp;

const APPID: &str = "wx_sdk_test";
const SECRET: &str = "sdk-signing-secret-for-tests";
const TOKEN_TTL_S: u64 = 3;

#[tokio::test]
async fn the_sdk_passes_its_node_tests_against_the_shop() {
    // The shop as its binary serves it: without the test-only probe plugin this
    // test binary links, whose route the generated types must not list.
    let app = TestApp::builder()
        .set("plugins.disabled", ["probe"])
        .set("auth.jwt.ttl_s", TOKEN_TTL_S)
        .set("auth.jwt.leeway_s", 0)
        .set("guard.signing.prefixes", ["/api/orders"])
        .set(&format!("guard.signing.secrets.{APPID}"), SECRET)
        // Payments through WeChat Pay's sandbox, for `pay()`.
        .set("pay.merchants.shop.mchid", "1900000109")
        .spawn()
        .await;
    let orders = app.ctx.get::<weapp_order::Orders>().unwrap();
    let product = weapp_order::NewProduct {
        name: "SDK 测试茶".into(),
        description: String::new(),
        price_fen: 500,
        stock: 100,
        active: true,
    };
    let product_id = orders.seed_products(&[product]).await.unwrap()[0].id;

    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../framework/sdk");
    // Its types are the shop's: `cargo run -p example-app -- sdk framework/sdk`.
    app.assert_sdk_current(&sdk).await;
    let app_url = app.address.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .args(["--test", "test/"])
            .current_dir(&sdk)
            // The `wx` stand-in's sockets are Node's WebSocket: built in from Node 22,
            // behind this flag on Node 20 (NODE_OPTIONS reaches the test processes).
            .env("NODE_OPTIONS", node_options_for_websocket())
            .env("WEAPP_BASE_URL", app_url)
            .env("WEAPP_SIGNING_APPID", APPID)
            .env("WEAPP_SIGNING_SECRET", SECRET)
            .env("WEAPP_PRODUCT_ID", product_id.to_string())
            .env("WEAPP_TOKEN_TTL_S", TOKEN_TTL_S.to_string())
            .output()
    })
    .await
    .unwrap()
    .expect("node runs: Node.js 18 or newer is needed for the SDK's tests");
    app.stop().await.unwrap();
    assert!(
        output.status.success(),
        "the SDK's tests failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `--experimental-websocket` where Node has no global WebSocket without it.
fn node_options_for_websocket() -> String {
    let mut options = std::env::var("NODE_OPTIONS").unwrap_or_default();
    let built_in = Command::new("node")
        .args([
            "-e",
            "process.exit(typeof WebSocket === 'function' ? 0 : 1)",
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !built_in {
        options.push_str(" --experimental-websocket");
    }
    options
}
