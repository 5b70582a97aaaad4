//! The order plugin's modules in layers, with no cycle: rows and statements at the
//! bottom, flash sales and the placement strategies over them, the service, then
//! what it offers.

use std::path::Path;

use weapp::testing::architecture::check_layers;

/// Bottom first; a module imports only from its own layer and those below.
const ORDER_LAYERS: &[&[&str]] = &[
    &[
        "schema",
        "model",
        "error",
        "config",
        "events",
        "idempotency",
        "gate",
    ],
    &["outbox"],
    &["rows"],
    &["statements"],
    &["flash"],
    &["placement"],
    &["service"],
    &["catalog", "placing", "transitions", "views", "privacy"],
    &["payment"],
    &["routes"],
    &["lib"],
];

#[test]
fn order_modules_import_down_the_layers_without_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let problems = check_layers(&src, ORDER_LAYERS);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_check_reports_an_upward_import_and_a_cycle() {
    let dir = std::env::temp_dir().join(format!("weapp-layers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("lib.rs"), "mod low; mod high;\n").unwrap();
    std::fs::write(dir.join("low.rs"), "use crate::high::Thing;\n").unwrap();
    std::fs::write(dir.join("high.rs"), "use crate::low::Other;\n").unwrap();
    let problems = check_layers(&dir, &[&["low"], &["high"], &["lib"]]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("low.rs:1: `low` (layer 0) imports `high` (layer 1)"));
    assert!(problems[1].starts_with("cycle [\"high\", \"low\"]"));
}
