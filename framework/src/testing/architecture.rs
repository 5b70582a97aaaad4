//! The module graph of a crate, for architecture tests: which top-level module
//! imports which, read from the `crate::…` paths in its code (comments and strings
//! left out). The framework's own layering test and the order plugin's use it; a
//! plugin of yours can too:
//!
//! ```no_run
//! use weapp::testing::architecture::check_layers;
//!
//! let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
//! // Bottom first: a module may import from its own layer and those below.
//! let layers: &[&[&str]] = &[&["model", "error"], &["store"], &["routes"], &["lib"]];
//! let problems = check_layers(&src, layers);
//! assert!(problems.is_empty(), "{}", problems.join("\n"));
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One `crate::` reference: which module file, which line, which module it names.
#[derive(Debug)]
pub struct Import {
    /// The importing top-level module.
    pub from: String,
    /// The file, relative to the base given to [`imports`].
    pub file: PathBuf,
    /// The line.
    pub line: usize,
    /// The imported top-level module.
    pub to: String,
}

/// Every `.rs` file under `dir`, appended to `out`.
pub fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
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
pub fn code_only(text: &str) -> String {
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
pub fn module_of(root: &Path, file: &Path) -> String {
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
pub fn crate_paths(code: &str) -> Vec<(usize, String)> {
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

/// Every `crate::` reference between top-level modules of the crate whose source
/// is at `root`; `resolve` maps a path's first segment to the module it names (or
/// `None` for names that are not modules), and files are named relative to `base`.
pub fn imports(root: &Path, base: &Path, resolve: &dyn Fn(&str) -> Option<String>) -> Vec<Import> {
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
                    file: file.strip_prefix(base).unwrap_or(&file).to_owned(),
                    line,
                    to,
                });
            }
        }
    }
    found
}

/// The layer (0 = bottom) of `module`; panics naming a module that has none.
pub fn layer_of(layers: &[&[&str]], module: &str) -> usize {
    layers
        .iter()
        .position(|layer| layer.contains(&module))
        .unwrap_or_else(|| panic!("module `{module}` has no layer: add it to the test's layers"))
}

/// Imports from a lower layer to a higher one, as readable lines.
pub fn upward(imports: &[Import], layers: &[&[&str]]) -> Vec<String> {
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
pub fn cycles(imports: &[Import]) -> Vec<Vec<String>> {
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

/// Checks the crate at `src` against `layers` (its top-level modules, bottom layer
/// first; `lib` is the crate root): every module has a layer, no import points up a
/// layer, and no two modules import each other, even through others. Returns the
/// problems, each naming the file and line of an import behind it.
pub fn check_layers(src: &Path, layers: &[&[&str]]) -> Vec<String> {
    let modules: BTreeSet<&str> = layers.iter().flat_map(|l| l.iter().copied()).collect();
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut problems: Vec<String> = files
        .iter()
        .map(|file| module_of(src, file))
        .filter(|module| !modules.contains(module.as_str()))
        .map(|module| format!("module `{module}` has no layer"))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if !problems.is_empty() {
        return problems;
    }
    let base = src.parent().unwrap_or(src);
    let found = imports(src, base, &|name| {
        modules.contains(name).then(|| name.to_owned())
    });
    problems.extend(upward(&found, layers));
    for cycle in cycles(&found) {
        let edges: Vec<String> = found
            .iter()
            .filter(|i| cycle.contains(&i.from) && cycle.contains(&i.to))
            .map(|i| format!("  {}:{}: {} -> {}", i.file.display(), i.line, i.from, i.to))
            .collect();
        problems.push(format!("cycle {cycle:?}:\n{}", edges.join("\n")));
    }
    problems
}
