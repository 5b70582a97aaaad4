#!/usr/bin/env bash
# The whole test suite, on a fresh machine too: starts the services and installs the
# tools it needs (tests/setup.sh), then runs the doc tests and every other test, and
# builds the API docs with warnings denied.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/setup.sh
cargo test --workspace --doc
cargo nextest run --workspace "$@"
# The API docs as docs.rs renders them: no broken or private links.
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --features weapp/testing
