#!/usr/bin/env bash
# The whole test suite, on a fresh machine too: starts the services and installs the
# tools it needs (tests/setup.sh), then runs the doc tests and every other test.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/setup.sh
cargo test --workspace --doc
cargo nextest run --workspace "$@"
