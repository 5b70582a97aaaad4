//! The example shop: weapp with its plugins, on SQLite and in-memory state by default.
//!
//! `cargo run -p example-app` serves on 127.0.0.1:8080; see `--help` for `migrate`,
//! `config check` and `audit verify`.

use example_app as _;

// Every request allocates (headers, JSON, query buffers) and frees on another
// thread as often as not; glibc's malloc spent ~12 % of the shop's CPU under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> weapp::Result<()> {
    weapp::App::from_env_with_defaults(example_app::DEFAULTS)?
        .version(env!("CARGO_PKG_VERSION"))
        // The example lives in weapp's repository: its commit is the framework's.
        .commit(weapp::FRAMEWORK_GIT_HASH)
        .run()
        .await
}
