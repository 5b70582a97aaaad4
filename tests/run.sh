#!/usr/bin/env bash
# The whole test suite, on a fresh machine too: starts the services and installs the
# tools it needs (tests/setup.sh), then runs the doc tests and every other test,
# builds the API docs with warnings denied, packages the publishable crates, checks
# their API against the last release and the dependency policy.
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
    -p weapp-crypto -p weapp-kernel -p weapp -p weapp-audit -p weapp-message -p weapp-order \
    -p weapp-pay
# The public API against the last release (tests/last-release): a breaking change
# needs the next minor version and an upgrade note.
tests/semver.sh
# The dependency tree's licences, duplicate versions (each one kept is explained)
# and sources (tests/deny.toml).
cargo deny -L error --config tests/deny.toml check licenses bans sources
# Known vulnerabilities, when the RustSec database is on this machine (tests/deny.toml
# says how to bring it to a machine without network).
if compgen -G "${CARGO_HOME:-$HOME/.cargo}/advisory-dbs/advisory-db-*/crates" >/dev/null; then
    cargo deny -L error --offline --config tests/deny.toml check advisories
else
    echo "advisories: no RustSec database in ${CARGO_HOME:-$HOME/.cargo}/advisory-dbs, not checked" \
        "(tests/deny.toml: how to bring it offline)"
fi
