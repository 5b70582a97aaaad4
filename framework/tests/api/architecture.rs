//! The framework's layers, held by a test where the compiler cannot hold them.
//!
//! Crates hold the big boundaries: `weapp-crypto` depends on nothing of ours and
//! `weapp-kernel` on nothing above it. Inside each crate this test reads every
//! `crate::…` path in the code (comments and strings left out), maps it to the
//! top-level module it names, and fails on
//! - an import from a module of a lower layer to one of a higher layer, naming the
//!   file and line;
//! - a cycle among top-level modules (imports within one layer must still form a
//!   tree), except the ones listed in `ALLOWED_CYCLES` with their reason.

use std::collections::BTreeSet;
use std::path::PathBuf;

use weapp::testing::architecture::{
    Import, code_only, crate_paths, cycles, imports, layer_of, module_of, rust_files, upward,
};

/// The kernel's modules, bottom first.
const KERNEL_LAYERS: &[&[&str]] = &[
    &["error", "request_id", "shutdown", "backoff", "clock"],
    &["config"],
    &["db", "kv"],
    &["crypto", "queue"],
    &["events", "plugin", "context"],
    &["lib"],
];

/// The `weapp` crate's modules, bottom first. `kernel` stands for everything the
/// crate re-exports from `weapp-kernel`.
const WEAPP_LAYERS: &[&[&str]] = &[
    &["kernel"],
    &["tls", "content", "observe"],
    &["http"],
    &["health", "api", "sdk"],
    &["wechat"],
    &["auth"],
    &["guard", "profiling", "realtime"],
    &["app", "cli", "testing"],
    &["lib"],
];

/// Cycles kept on purpose, as sorted module lists.
const ALLOWED_CYCLES: &[(&[&str], &str)] = &[(
    &["context", "events"],
    "the event bus lives in the context and hands the context to each handler",
)];

/// Names the kernel re-exports at the root of `weapp`, so `crate::Error` inside
/// `weapp` is an import from the kernel.
const KERNEL_ROOT_ITEMS: &[&str] = &[
    "AppContext",
    "BackgroundTask",
    "Config",
    "Error",
    "Plugin",
    "Result",
    "Shutdown",
    "config_section",
    "insert_returning_id",
    "migration",
    "register_plugin",
    "retrying",
    "sealed_column",
    "transaction",
    "with_conn",
    "inventory",
];

/// Root items of the kernel crate, by the module that defines them.
const KERNEL_ROOT_OWNERS: &[(&str, &str)] = &[
    ("AppContext", "context"),
    ("BuildInfo", "context"),
    ("BackgroundTask", "plugin"),
    ("Config", "config"),
    ("Error", "error"),
    ("Result", "error"),
    ("Plugin", "plugin"),
    ("Shutdown", "shutdown"),
    ("config_section", "config"),
    ("insert_returning_id", "db"),
    ("retrying", "backoff"),
    ("migration", "db"),
    ("register_plugin", "plugin"),
    ("sealed_column", "db"),
    ("transaction", "db"),
    ("with_conn", "db"),
    ("inventory", "lib"),
];

fn unexpected_cycles(imports: &[Import]) -> Vec<String> {
    cycles(imports)
        .into_iter()
        .filter(|c| {
            !ALLOWED_CYCLES
                .iter()
                .any(|(allowed, _)| allowed.iter().copied().eq(c.iter().map(String::as_str)))
        })
        .map(|c| {
            let edges: Vec<String> = imports
                .iter()
                .filter(|i| c.contains(&i.from) && c.contains(&i.to))
                .map(|i| format!("  {}:{}: {} -> {}", i.file.display(), i.line, i.from, i.to))
                .collect();
            format!("cycle {c:?}:\n{}", edges.join("\n"))
        })
        .collect()
}

fn framework_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn kernel_imports() -> Vec<Import> {
    let root = framework_dir().join("kernel/src");
    let modules: BTreeSet<String> = KERNEL_LAYERS
        .iter()
        .flat_map(|l| l.iter().map(|m| m.to_string()))
        .collect();
    imports(&root, &framework_dir(), &|name| {
        if modules.contains(name) {
            return Some(name.to_owned());
        }
        KERNEL_ROOT_OWNERS
            .iter()
            .find(|(item, _)| *item == name)
            .map(|(_, owner)| owner.to_string())
    })
}

fn weapp_imports() -> Vec<Import> {
    let root = framework_dir().join("src");
    let own: BTreeSet<String> = WEAPP_LAYERS
        .iter()
        .flat_map(|l| l.iter().map(|m| m.to_string()))
        .collect();
    let kernel_modules: BTreeSet<&str> = KERNEL_LAYERS
        .iter()
        .flat_map(|l| l.iter().copied())
        .collect();
    imports(&root, &framework_dir(), &|name| {
        if own.contains(name) && name != "kernel" {
            Some(name.to_owned())
        } else if kernel_modules.contains(name) || KERNEL_ROOT_ITEMS.contains(&name) {
            Some("kernel".to_owned())
        } else {
            match name {
                "App" | "Server" => Some("app".to_owned()),
                "prelude" => Some("lib".to_owned()),
                _ => None,
            }
        }
    })
}

#[test]
fn no_module_imports_from_a_higher_layer() {
    let mut problems = upward(&kernel_imports(), KERNEL_LAYERS);
    problems.extend(upward(&weapp_imports(), WEAPP_LAYERS));
    assert!(
        problems.is_empty(),
        "imports must point down the layers:\n{}",
        problems.join("\n")
    );
}

#[test]
fn no_cycle_spans_two_top_level_modules() {
    let mut problems = unexpected_cycles(&kernel_imports());
    problems.extend(unexpected_cycles(&weapp_imports()));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_module_of_both_crates_has_a_layer() {
    for (root, layers) in [
        (framework_dir().join("kernel/src"), KERNEL_LAYERS),
        (framework_dir().join("src"), WEAPP_LAYERS),
    ] {
        let mut files = Vec::new();
        rust_files(&root, &mut files);
        for file in files {
            layer_of(layers, &module_of(&root, &file));
        }
    }
}

#[test]
fn the_scanner_sees_imports_and_ignores_comments_and_strings() {
    let code = code_only(
        "use crate::{auth::AuthUser, db, wechat::{WechatClient, errcode}};\n\
         // crate::guard in a comment\n\
         let s = \"crate::http in a string\"; let r = r#\"crate::tls\"#;\n\
         fn f<'a>(x: &'a str) -> crate::Result<()> { let c = 'x'; crate::observe::init() }\n",
    );
    let names: Vec<(usize, String)> = crate_paths(&code);
    assert_eq!(
        names,
        [
            (1, "auth".to_owned()),
            (1, "db".to_owned()),
            (1, "wechat".to_owned()),
            (4, "Result".to_owned()),
            (4, "observe".to_owned()),
        ]
    );
    // And a real upward import is reported with its file and line.
    let imports = vec![Import {
        from: "kernel".into(),
        file: "src/x.rs".into(),
        line: 7,
        to: "auth".into(),
    }];
    assert_eq!(
        upward(&imports, WEAPP_LAYERS),
        ["src/x.rs:7: `kernel` (layer 0) imports `auth` (layer 5)"]
    );
}
