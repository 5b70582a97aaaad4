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

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The kernel's modules, bottom first.
const KERNEL_LAYERS: &[&[&str]] = &[
    &["error", "request_id", "shutdown", "backoff"],
    &["config"],
    &["db", "kv"],
    &["crypto"],
    &["events", "plugin", "context"],
    &["lib"],
];

/// The `weapp` crate's modules, bottom first. `kernel` stands for everything the
/// crate re-exports from `weapp-kernel`.
const WEAPP_LAYERS: &[&[&str]] = &[
    &["kernel"],
    &["tls", "content", "observe"],
    &["http"],
    &["health", "api"],
    &["wechat"],
    &["auth"],
    &["guard", "profiling"],
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
    "migration",
    "register_plugin",
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
    ("migration", "db"),
    ("register_plugin", "plugin"),
    ("sealed_column", "db"),
    ("transaction", "db"),
    ("with_conn", "db"),
    ("inventory", "lib"),
];

/// One `crate::` reference: which module file, which line, which module it names.
#[derive(Debug)]
struct Import {
    from: String,
    file: PathBuf,
    line: usize,
    to: String,
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source with comments and string/char literals blanked, lines kept, so what
/// is left is code and line numbers still match.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r'
            && matches!(next, Some('"') | Some('#'))
            && !is_ident(chars.get(i.wrapping_sub(1)))
        {
            // Raw string: r"…", r#"…"#, …
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let closing: String = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            let body_start = j + 1;
            let rest: String = chars[body_start..].iter().collect();
            let end = rest.find(&closing).map_or(chars.len(), |e| {
                body_start + rest[..e].chars().count() + closing.chars().count()
            });
            for &ch in &chars[i..end] {
                out.push(blank(ch));
            }
            i = end;
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < chars.len() {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' && (next == Some('\\') || chars.get(i + 2) == Some(&'\'')) {
            // A char literal ('x', '\n'); a lifetime ('a) has no closing quote.
            let end = (i + 1..chars.len())
                .find(|&k| chars[k] == '\'' && k > i + 1)
                .unwrap_or(i);
            for _ in i..=end {
                out.push(' ');
            }
            i = end + 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn is_ident(c: Option<&char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || *c == '_')
}

/// The top-level module a file belongs to: `src/auth/jwt.rs` → `auth`.
fn module_of(root: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(root).expect("under the source root");
    let first = relative
        .components()
        .next()
        .expect("a path")
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    first.trim_end_matches(".rs").to_owned()
}

/// The first segments after every `crate::` (also inside `use crate::{a, b::c}`).
fn crate_paths(code: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (number, line) in code.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            let before = rest[..at].chars().last();
            rest = &rest[at + "crate::".len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                continue; // `weapp_crate::`, or a macro's `$crate::`
            }
            if let Some(group) = rest.strip_prefix('{') {
                // The group's items at depth 1, each named by its first segment.
                let mut depth = 1;
                let mut items = vec![String::new()];
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 1 => break,
                        '}' => depth -= 1,
                        ',' if depth == 1 => items.push(String::new()),
                        c if depth == 1 => items.last_mut().expect("an item").push(c),
                        _ => {}
                    }
                }
                for item in items {
                    let name: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        found.push((number + 1, name));
                    }
                }
                continue;
            }
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.push((number + 1, name));
            }
        }
    }
    found
}

/// Every `crate::` reference between top-level modules of the crate at `root`.
fn imports(root: &Path, resolve: &dyn Fn(&str) -> Option<String>) -> Vec<Import> {
    let mut files = Vec::new();
    rust_files(root, &mut files);
    let mut found = Vec::new();
    for file in files {
        let from = module_of(root, &file);
        let text = std::fs::read_to_string(&file).expect("read source");
        for (line, name) in crate_paths(&code_only(&text)) {
            let Some(to) = resolve(&name) else { continue };
            if to != from {
                found.push(Import {
                    from: from.clone(),
                    file: file
                        .strip_prefix(framework_dir())
                        .unwrap_or(&file)
                        .to_owned(),
                    line,
                    to,
                });
            }
        }
    }
    found
}

fn layer_of(layers: &[&[&str]], module: &str) -> usize {
    layers
        .iter()
        .position(|layer| layer.contains(&module))
        .unwrap_or_else(|| panic!("module `{module}` has no layer: add it to the test's layers"))
}

/// Imports from a lower layer to a higher one, as readable lines.
fn upward(imports: &[Import], layers: &[&[&str]]) -> Vec<String> {
    imports
        .iter()
        .filter(|i| layer_of(layers, &i.from) < layer_of(layers, &i.to))
        .map(|i| {
            format!(
                "{}:{}: `{}` (layer {}) imports `{}` (layer {})",
                i.file.display(),
                i.line,
                i.from,
                layer_of(layers, &i.from),
                i.to,
                layer_of(layers, &i.to)
            )
        })
        .collect()
}

/// Strongly connected components with more than one module (Tarjan's algorithm).
fn cycles(imports: &[Import]) -> Vec<Vec<String>> {
    let mut graph: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for i in imports {
        graph.entry(&i.from).or_default().insert(&i.to);
        graph.entry(&i.to).or_default();
    }
    struct State<'a> {
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(v: &'a str, graph: &BTreeMap<&'a str, BTreeSet<&'a str>>, s: &mut State<'a>) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        for &w in &graph[v] {
            if !s.index.contains_key(w) {
                visit(w, graph, s);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.stack.contains(&w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                component.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut state = State {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for &v in graph.keys() {
        if !state.index.contains_key(v) {
            visit(v, &graph, &mut state);
        }
    }
    state.found
}

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
    imports(&root, &|name| {
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
    imports(&root, &|name| {
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
