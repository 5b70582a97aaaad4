//! Finding error codes and metric names in the source text, where they are string
//! literals in a few recognisable positions.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file of the framework (its sub-crates too), the plugins and the
/// example app.
fn sources(root: &Path) -> Vec<(PathBuf, String)> {
    let mut stack: Vec<PathBuf> = ["framework", "plugins", "example-app/src"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    let mut files = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                // A plugin's own tests may invent codes for test plugins.
                if path.file_name().is_some_and(|n| {
                    !["tests", "migrations", "benches"].contains(&n.to_str().unwrap_or_default())
                }) {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("read source");
                files.push((path, strip_tests(&text)));
            }
        }
    }
    files
}

/// The file without its `#[cfg(test)]` module (always last in our files).
fn strip_tests(text: &str) -> String {
    match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => text[..at].to_owned(),
        None => text.to_owned(),
    }
}

/// The string literal starting at `text[at..]` after whitespace, if any.
fn literal_at(text: &str, at: usize) -> Option<&str> {
    let rest = text[at..].trim_start();
    let rest = rest.strip_prefix('"')?;
    rest.find('"').map(|end| &rest[..end])
}

fn status_named(name: &str) -> u16 {
    match name {
        "BAD_REQUEST" => 400,
        "UNAUTHORIZED" => 401,
        "FORBIDDEN" => 403,
        "NOT_FOUND" => 404,
        "CONFLICT" => 409,
        "PAYLOAD_TOO_LARGE" => 413,
        "UNSUPPORTED_MEDIA_TYPE" => 415,
        "UNPROCESSABLE_ENTITY" => 422,
        "TOO_MANY_REQUESTS" => 429,
        "INTERNAL_SERVER_ERROR" => 500,
        "BAD_GATEWAY" => 502,
        "SERVICE_UNAVAILABLE" => 503,
        "GATEWAY_TIMEOUT" => 504,
        other => panic!("add StatusCode::{other} to the scanner"),
    }
}

fn is_code(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_lowercase())
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Error codes with the statuses they are sent with where the call site says so.
/// Sources: `Error::<constructor>(...)` calls, the signing guard's `rejected(...)`,
/// hand-written `"code": "..."` / `code: Some("...")` bodies, and the `=> "code"` arms of every `fn code` and `fn default_code`.
pub(crate) fn error_codes(root: &Path) -> BTreeMap<String, BTreeSet<u16>> {
    let constructors = [
        ("Error::bad_request(", Some(400)),
        ("Error::conflict(", Some(409)),
        ("Error::unprocessable(", Some(422)),
        ("Error::unavailable(", Some(503)),
        ("rejected(", Some(401)),
        // Bodies written by hand: a stored idempotent refusal, `/readyz`.
        ("\"code\": ", None),
        ("code: Some(", None),
        ("Error::http(", None),
    ];
    let mut codes: BTreeMap<String, BTreeSet<u16>> = BTreeMap::new();
    codes.entry("not_found".into()).or_default().insert(404);
    for (_, text) in sources(root) {
        for (call, status) in constructors {
            for (at, _) in text.match_indices(call) {
                let mut after = at + call.len();
                let mut status = status;
                if status.is_none() && call == "Error::http(" {
                    let rest = text[after..].trim_start();
                    let Some(named) = rest.strip_prefix("StatusCode::") else {
                        continue; // a status from a variable: its code is a variable too
                    };
                    let name: String = named
                        .chars()
                        .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                        .collect();
                    status = Some(status_named(&name));
                    let comma = text[after..].find(',').expect("Error::http has arguments");
                    after += comma + 1;
                }
                if let Some(code) = literal_at(&text, after).filter(|c| is_code(c)) {
                    codes.entry(code.to_owned()).or_default().extend(status);
                }
            }
        }
        let functions = ["fn code(", "fn default_code("];
        for start in functions
            .iter()
            .flat_map(|f| text.match_indices(f).map(|(at, _)| at))
        {
            let body = &text[start..];
            let end = ["\n}\n", "\n    }\n"]
                .iter()
                .filter_map(|e| body.find(e))
                .min()
                .unwrap_or(body.len());
            let body = &body[..end];
            // Match arms, or the one literal of a constant code.
            let arms = body.match_indices("=> ").map(|(at, _)| at + 3);
            let constant = body.find('{').map(|at| at + 1);
            for at in arms.chain(constant) {
                if let Some(code) = literal_at(body, at).filter(|c| is_code(c)) {
                    codes.entry(code.to_owned()).or_default();
                }
            }
        }
    }
    codes
}

/// Names of Prometheus families: the first literal of `Opts::new`,
/// `HistogramOpts::new`, `IntGauge::new`, `IntCounter::new`, `Gauge::new`.
pub(crate) fn metric_names(root: &Path) -> BTreeSet<String> {
    let calls = [
        "Opts::new(",
        "IntGauge::new(",
        "IntCounter::new(",
        "Gauge::new(",
        "Counter::new(",
    ];
    let mut names = BTreeSet::new();
    for (_, text) in sources(root) {
        for call in calls {
            for (at, _) in text.match_indices(call) {
                if let Some(name) = literal_at(&text, at + call.len()) {
                    names.insert(name.to_owned());
                }
            }
        }
    }
    names
}
