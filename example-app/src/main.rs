//! The example shop: weapp with its plugins, on SQLite and in-memory state by default.
//!
//! `cargo run -p example-app` serves on 127.0.0.1:8080; see `--help` for `migrate`,
//! `config check` and `audit verify`.

use example_app as _;

#[tokio::main]
async fn main() -> weapp::Result<()> {
    weapp::App::from_env_with_defaults(example_app::DEFAULTS)?
        .version(env!("CARGO_PKG_VERSION"))
        .run()
        .await
}
