#!/usr/bin/env bash
# The public Rust API of the published crates against the last release
# (tests/last-release: its tag, and its commit for a clone without tags), with
# cargo-semver-checks: a change that breaks the API needs the next minor version
# (0.1 -> 0.2) in the root Cargo.toml and an **Upgrade** line in the changelog.
#
# Both sides are documented as rustdoc JSON into one target dir of their own
# (target/semver), so dependencies are checked once for all crates and both sides,
# and the baseline's sources are unpacked once (target/semver/baseline-<commit>).
set -euo pipefail
cd "$(dirname "$0")/.."
# Crates published in the last release; a crate first published by the next one
# (weapp-pay) joins the list after that release.
crates=(weapp-crypto weapp-kernel weapp weapp-order weapp-message weapp-audit)

read -r tag commit < tests/last-release
if rev=$(git rev-parse -q --verify "refs/tags/$tag^{commit}"); then
    :
elif git cat-file -e "$commit^{commit}" 2>/dev/null; then
    rev=$commit
else
    echo "error: the last release $tag ($commit) is not in this clone; fetch its history" \
        "(git fetch --tags, or --unshallow for a shallow clone)" >&2
    exit 1
fi

target=$PWD/target/semver
baseline=$target/baseline-$rev
if [ ! -f "$baseline/Cargo.toml" ]; then
    rm -rf "$baseline.tmp"
    mkdir -p "$baseline.tmp"
    git archive "$rev" | tar -x -C "$baseline.tmp"
    mv "$baseline.tmp" "$baseline"
fi

# rustdoc's JSON output is unstable: RUSTC_BOOTSTRAP lets the stable toolchain write
# it, as cargo-semver-checks itself does.
rustdoc_json() {
    local root=$1 crate=$2 out=$3
    (cd "$root" && RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=$target cargo rustdoc --quiet --locked \
        -p "$crate" --lib -- -Z unstable-options --output-format json)
    cp "$target/doc/${crate//-/_}.json" "$out"
}

mkdir -p "$target/json"
for crate in "${crates[@]}"; do
    echo "== $crate: $tag -> working tree"
    rustdoc_json "$baseline" "$crate" "$target/json/$crate.baseline.json"
    rustdoc_json "$PWD" "$crate" "$target/json/$crate.current.json"
    cargo semver-checks --baseline-rustdoc "$target/json/$crate.baseline.json" \
        --current-rustdoc "$target/json/$crate.current.json"
done
