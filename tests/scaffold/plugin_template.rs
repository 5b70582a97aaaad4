//! `templates/plugin`: a generated plugin crate registers itself, migrates and
//! serves its routes inside a test app.

use crate::generate::{Scratch, assert_formatted, cargo_in, generate, read, repo_root};

#[test]
fn a_generated_plugin_builds_and_passes_its_tests() {
    let scratch = Scratch::new("plugin");
    let root = repo_root();
    let project = generate(
        "plugin",
        scratch.path(),
        "weapp-coupon",
        &[
            ("plugin_name", "coupon"),
            ("weapp_source", root.to_str().expect("UTF-8 path")),
        ],
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
