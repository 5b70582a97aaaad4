//! Release readiness of the publishable crates, from `cargo metadata`: what crates.io
//! and docs.rs need from each manifest, and a declared MSRV that no dependency in the
//! lock file contradicts. (`tests/run.sh` packages the crates, checks their public
//! API against the last release with cargo-semver-checks, and runs cargo-deny.)

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// `cargo metadata` of this workspace, resolved for the platform weapp deploys to.
fn metadata() -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--locked",
            "--filter-platform",
            "x86_64-unknown-linux-gnu",
        ])
        .current_dir(root)
        .output()
        .expect("run cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("cargo metadata JSON")
}

/// A version (`1.89`, `1.89.0`, `0.42.0`) as comparable numbers.
fn version_triple(text: &str) -> (u64, u64, u64) {
    let mut parts = text.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

fn workspace_members(meta: &Value) -> Vec<&Value> {
    let members: Vec<&str> = meta["workspace_members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter(|p| members.contains(&p["id"].as_str().unwrap_or_default()))
        .collect()
}

/// Publishable: `publish` is not `false` (cargo metadata gives `[]` for false).
fn publishable(package: &Value) -> bool {
    package["publish"]
        .as_array()
        .is_none_or(|registries| !registries.is_empty())
}

#[test]
fn publishable_crates_carry_what_crates_io_and_docs_rs_need() {
    let meta = metadata();
    let published: Vec<&Value> = workspace_members(&meta)
        .into_iter()
        .filter(|p| publishable(p))
        .collect();
    let names: Vec<&str> = published
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for expected in [
        "weapp",
        "weapp-kernel",
        "weapp-crypto",
        "weapp-order",
        "weapp-message",
        "weapp-audit",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} is published: {names:?}"
        );
    }
    for package in published {
        let name = package["name"].as_str().unwrap_or_default();
        for field in [
            "description",
            "license",
            "repository",
            "documentation",
            "rust_version",
        ] {
            assert!(
                package[field].as_str().is_some_and(|v| !v.is_empty()),
                "{name}: no {field}"
            );
        }
        assert!(
            package["documentation"]
                .as_str()
                .is_some_and(|url| url.ends_with(&format!("docs.rs/{name}"))),
            "{name}: documentation is its docs.rs page"
        );
        for list in ["keywords", "categories"] {
            let items = package[list].as_array().map(Vec::len).unwrap_or(0);
            assert!((1..=5).contains(&items), "{name}: {items} {list} (1 to 5)");
        }
        // Every dependency a published crate names resolves from crates.io once
        // published: a path needs a version beside it (dev-dependencies excepted,
        // which `cargo package` drops when they have no version).
        for dependency in package["dependencies"].as_array().expect("dependencies") {
            let kind = dependency["kind"].as_str().unwrap_or("normal");
            if dependency["path"].is_string() && kind != "dev" {
                assert_ne!(
                    dependency["req"].as_str(),
                    Some("*"),
                    "{name}: path dependency {} has no version",
                    dependency["name"]
                );
            }
        }
    }
}

/// The declared MSRV is a floor no dependency raises: every crate in the lock file
/// that states a `rust-version` states one no newer. (Our own code against the MSRV's
/// standard library is clippy's `incompatible_msrv` lint, on in CI; the machine has
/// one toolchain, so no build with the MSRV's compiler here.)
#[test]
fn no_dependency_needs_a_newer_rust_than_the_declared_msrv() {
    let meta = metadata();
    let declared = workspace_members(&meta)
        .iter()
        .find(|p| p["name"] == "weapp")
        .and_then(|p| p["rust_version"].as_str())
        .map(str::to_owned)
        .expect("weapp declares a rust-version");
    let resolved: Vec<&str> = meta["resolve"]["nodes"]
        .as_array()
        .expect("resolve")
        .iter()
        .filter_map(|n| n["id"].as_str())
        .collect();
    let newer: Vec<String> = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter(|p| resolved.contains(&p["id"].as_str().unwrap_or_default()))
        .filter_map(|p| {
            let needs = p["rust_version"].as_str()?;
            (version_triple(needs) > version_triple(&declared))
                .then(|| format!("{} {} needs {needs}", p["name"], p["version"]))
        })
        .collect();
    assert!(
        newer.is_empty(),
        "the MSRV is {declared}, but {newer:?}: raise rust-version in the root \
         Cargo.toml (and the changelog), or hold those crates back"
    );
}

/// tests/deny.toml ignores two quick-xml advisories by id, for the old quick-xml
/// inside pprof's flamegraph renderer; an id ignore would hide them for weapp's own
/// quick-xml (which parses pushes from the network) too, so this keeps that one at a
/// fixed version (0.41 and later).
#[test]
fn the_quick_xml_weapp_parses_pushes_with_has_the_advisory_fixes() {
    let meta = metadata();
    let weapp = meta["resolve"]["nodes"]
        .as_array()
        .expect("resolve")
        .iter()
        .find(|n| {
            n["id"]
                .as_str()
                .is_some_and(|id| id.contains("/framework#weapp@"))
        })
        .expect("weapp in the resolve graph");
    let quick_xml = weapp["deps"]
        .as_array()
        .expect("deps")
        .iter()
        .find(|d| d["name"] == "quick_xml")
        .and_then(|d| d["pkg"].as_str())
        .expect("weapp depends on quick-xml");
    let version = quick_xml.rsplit('@').next().unwrap_or_default();
    assert!(
        version_triple(version) >= (0, 41, 0),
        "weapp's quick-xml is {version}: RUSTSEC-2026-0194/0195 are fixed in 0.41"
    );
}

#[test]
fn versions_compare_as_numbers() {
    assert!(version_triple("1.100") > version_triple("1.89.0"));
    assert_eq!(version_triple("1.89"), version_triple("1.89.0"));
}
