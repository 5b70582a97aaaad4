//! The example shop: weapp with its plugins, on SQLite and in-memory state by default.
//!
//! `cargo run -p example-app` serves on 127.0.0.1:8080; see `--help` for `migrate` and
//! `config check`.

mod shop;

// Plugins register themselves at compile time; naming each crate keeps the linker
// from dropping it (and its registration).
use weapp_audit as _;
use weapp_message as _;
use weapp_order as _;

/// The shop's defaults, embedded so the binary runs from any directory.
const DEFAULTS: &str = include_str!("../config/default.toml");

#[tokio::main]
async fn main() -> weapp::Result<()> {
    weapp::App::from_env_with_defaults(DEFAULTS)?
        .version(env!("CARGO_PKG_VERSION"))
        .run()
        .await
}
