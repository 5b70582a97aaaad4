//! The example shop as one node of the end-to-end tests' `TestCluster`: the same app
//! as `example-app`'s binary, built with this package so its tests can start it as a
//! process (`CARGO_BIN_EXE_shop-node`).

use example_app as _;

#[tokio::main]
async fn main() -> weapp::Result<()> {
    weapp::App::from_env_with_defaults(example_app::DEFAULTS)?
        .version(env!("CARGO_PKG_VERSION"))
        .commit(weapp::FRAMEWORK_GIT_HASH)
        .run()
        .await
}
