//! {{project-name}}: a WeChat mini-program backend on weapp.
//!
//! `cargo run` serves on 127.0.0.1:8080; `cargo run -- --help` lists `migrate`,
//! `config check` and the plugins' commands.

use {{crate_name}} as _;

#[tokio::main]
async fn main() -> weapp::Result<()> {
    weapp::App::from_env_with_defaults({{crate_name}}::DEFAULTS)?
        .version(env!("CARGO_PKG_VERSION"))
        // Set by build.rs: this project's commit, for /healthz.
        .commit(option_env!("APP_GIT_HASH").unwrap_or_default())
        .run()
        .await
}
