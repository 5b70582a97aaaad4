#!/usr/bin/env bash
# The whole test suite, on a fresh machine too: starts the services and installs the
# tools it needs (tests/setup.sh), then runs the doc tests and every other test,
# builds the API docs with warnings denied, packages the publishable crates and
# checks the dependency policy.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/setup.sh
cargo test --workspace --doc
cargo nextest run --workspace "$@"
# The API docs as docs.rs renders them: no broken or private links.
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace
# The publishable crates package, in dependency order (manifests, include lists,
# versions on path dependencies). Not verified by a build from the packages here: the
# workspace build above compiles the same sources.
cargo package --offline --no-verify --allow-dirty \
    -p weapp-crypto -p weapp-kernel -p weapp -p weapp-audit -p weapp-message -p weapp-order
# The dependency tree's licences, banned crates and sources (tests/deny.toml);
# duplicate versions are warnings, shown with `-L warn`.
cargo deny -L error --config tests/deny.toml check licenses bans sources
