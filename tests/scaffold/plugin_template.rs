//! `templates/plugin`: a generated plugin crate registers itself, migrates and
//! serves its routes inside a test app.

use crate::generate::{Scratch, assert_formatted, cargo_in, generate, read, repo_root};

#[test]
fn a_generated_plugin_builds_and_passes_its_tests() {
    // Outside an app, weapp comes from crates.io by default; this checkout stands in.
    let scratch = Scratch::fixed("plugin").with_weapp_on_crates_io();
    let project = generate(
        "plugin",
        scratch.path(),
        "weapp-coupon",
        &[("plugin_name", "coupon")],
    );
    crate::app_template::assert_fully_rendered(
        &project,
        &[
            "Cargo.toml",
            "README.md",
            "src/lib.rs",
            "tests/plugin.rs",
            "migrations/postgres/0001_create_coupon_items.sql",
            "migrations/mysql/0001_create_coupon_items.sql",
            "migrations/sqlite/0001_create_coupon_items.sql",
        ],
    );
    let manifest: toml::Table = read(&project, "Cargo.toml").parse().expect("valid TOML");
    assert_eq!(
        manifest["dependencies"]["weapp"].as_str(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert!(read(&project, "src/lib.rs").contains("\"/api/coupon/items\""));
    assert!(read(&project, "README.md").contains("WEAPP__COUPON__MAX_TITLE_CHARS"));
    assert_formatted(&project);
    let tested = cargo_in(&project, &["test"]);
    let stdout = String::from_utf8_lossy(&tested.stdout);
    assert!(
        stdout.contains("test the_plugin_is_registered ... ok")
            && stdout.contains("test items_are_added_and_listed_for_their_owner ... ok"),
        "{stdout}"
    );
}

/// Generated inside an app's folder (`--destination plugins`), a plugin joins the
/// app's workspace and takes weapp from it: nothing asks where weapp is, and the app
/// links it with one dependency line and one `use`.
#[test]
fn a_plugin_generated_inside_an_app_joins_its_workspace() {
    let scratch = Scratch::fixed("plugin-in-app").with_weapp_on_crates_io();
    let app = generate("app", scratch.path(), "shop", &[]);
    let plugin = generate(
        "plugin",
        &app.join("plugins"),
        "coupon",
        &[("plugin_name", "coupon")],
    );
    let manifest = read(&plugin, "Cargo.toml");
    assert!(manifest.contains("weapp.workspace = true"), "{manifest}");
    assert!(!manifest.contains("[workspace]") && !manifest.contains("[profile"));

    let app_manifest = read(&app, "Cargo.toml").replacen(
        "[dependencies]\n",
        "[dependencies]\ncoupon = { path = \"plugins/coupon\" }\n",
        1,
    );
    std::fs::write(app.join("Cargo.toml"), app_manifest).expect("add the dependency");
    let lib = read(&app, "src/lib.rs").replacen(
        "use weapp_audit as _;",
        "use coupon as _;\nuse weapp_audit as _;",
        1,
    );
    std::fs::write(app.join("src/lib.rs"), lib).expect("link the plugin");
    assert!(!plugin.join("Cargo.lock").exists());
    let tested = cargo_in(&app, &["test", "--workspace"]);
    let stdout = String::from_utf8_lossy(&tested.stdout);
    assert!(
        stdout.contains("test the_plugin_is_registered ... ok")
            && stdout.contains("test items_are_added_and_listed_for_their_owner ... ok"),
        "{stdout}"
    );
    let built = cargo_in(&app, &["run", "--", "--help"]);
    assert!(
        String::from_utf8_lossy(&built.stdout).contains("Plugin commands:"),
        "the app runs with the plugin linked"
    );
}

/// Both templates check `weapp_source` with the same hook; cargo-generate does not
/// follow links, so each holds a copy, and the copies must not drift apart.
#[test]
fn both_templates_check_weapp_source_with_the_same_hook() {
    let hook = |template: &str| {
        std::fs::read_to_string(
            repo_root()
                .join("templates")
                .join(template)
                .join("check-weapp-source.rhai"),
        )
        .expect("the hook")
    };
    assert_eq!(hook("app"), hook("plugin"));
}
