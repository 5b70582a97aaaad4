//! The reference chapters agree with the code: every config key, error code,
//! metric and CLI subcommand in the code is documented, and nothing documented is
//! missing from the code. A failure prints the rows to add or remove.

mod scan;

// The plugins whose sections the configuration reference documents.
use weapp_audit as _;
use weapp_message as _;
use weapp_order as _;
use weapp_pay as _;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn chapter(name: &str) -> String {
    let path = repo_root().join("book/src/reference").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The cells of every table row whose first cell is code (`` `...` ``), by that code.
fn table_rows(markdown: &str) -> BTreeMap<String, Vec<String>> {
    let mut rows = BTreeMap::new();
    for line in markdown.lines() {
        let Some(inner) = line.trim().strip_prefix('|') else {
            continue;
        };
        let cells: Vec<String> = inner
            .trim_end_matches('|')
            .split(" | ")
            .map(|c| c.trim().to_owned())
            .collect();
        let Some(first) = cells.first() else { continue };
        if let Some(code) = first.strip_prefix('`').and_then(|c| c.strip_suffix('`')) {
            let previous = rows.insert(code.to_owned(), cells[1..].to_vec());
            assert!(previous.is_none(), "`{code}` is listed twice");
        }
    }
    rows
}

/// Fails listing what the code has and the chapter lacks, and the reverse.
fn assert_same(what: &str, in_code: &BTreeSet<String>, documented: &BTreeSet<String>) {
    let undocumented: Vec<_> = in_code.difference(documented).collect();
    let stale: Vec<_> = documented.difference(in_code).collect();
    assert!(
        undocumented.is_empty() && stale.is_empty(),
        "{what}: missing from the reference: {undocumented:#?}\n\
         in the reference but not in the code: {stale:#?}"
    );
}

/// Leaf keys of a serialized config with their default, JSON-rendered. Empty maps
/// and absent optional sections are leaves too (`auth.jwt.keys`, `server.tls`).
fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, String>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, value) in map {
                flatten(&format!("{prefix}.{key}"), value, out);
            }
        }
        other => {
            out.insert(prefix.to_owned(), other.to_string());
        }
    }
}

fn config_keys() -> BTreeMap<String, String> {
    let mut keys = BTreeMap::new();
    let framework = serde_json::to_value(weapp::Config::default()).expect("serializable");
    for (section, value) in framework.as_object().expect("a table") {
        if section != "environment" {
            flatten(section, value, &mut keys);
        }
    }
    // Every feature's and plugin's section, as registered.
    for section in weapp::config::sections() {
        flatten(section.name, &section.defaults(), &mut keys);
    }
    keys
}

/// `server.port` → `WEAPP__SERVER__PORT`.
fn env_var(key: &str) -> String {
    format!("WEAPP__{}", key.replace('.', "__").to_uppercase())
}

#[test]
fn every_config_key_is_documented_with_its_default_and_variable() {
    let keys = config_keys();
    let rows = table_rows(&chapter("config.md"));
    // A documented key may go below a leaf of the defaults: an entry of a map
    // (`auth.jwt.keys.<kid>`) or a field of an optional section (`server.tls.cert_path`).
    let documented: BTreeSet<String> = rows
        .keys()
        .map(|k| {
            keys.keys()
                .find(|leaf| k.starts_with(&format!("{leaf}.")))
                .cloned()
                .unwrap_or_else(|| k.clone())
        })
        .collect();
    let missing: Vec<String> = keys
        .iter()
        .filter(|(k, _)| !documented.contains(*k))
        .map(|(k, default)| format!("| `{k}` | `{default}` | `{}` | … |", env_var(k)))
        .collect();
    assert!(missing.is_empty(), "rows to add:\n{}", missing.join("\n"));
    assert_same("config keys", &keys.keys().cloned().collect(), &documented);
    for (key, default) in &keys {
        let Some(cells) = rows.get(key) else { continue };
        let expected = [format!("`{default}`"), format!("`{}`", env_var(key))];
        assert!(
            cells.len() >= 3 && cells[..2] == expected,
            "row of `{key}` should start | `{key}` | {} | {} | <what it does> |, found {cells:?}",
            expected[0],
            expected[1]
        );
    }
}

#[test]
fn every_error_code_is_documented_with_its_status() {
    let found = scan::error_codes(&repo_root());
    let rows = table_rows(&chapter("errors.md"));
    let missing: Vec<String> = found
        .iter()
        .filter(|(code, _)| !rows.contains_key(*code))
        .map(|(code, statuses)| format!("| `{code}` | {statuses:?} | … |"))
        .collect();
    assert!(missing.is_empty(), "rows to add:\n{}", missing.join("\n"));
    assert_same(
        "error codes",
        &found.keys().cloned().collect(),
        &rows.keys().cloned().collect(),
    );
    for (code, statuses) in &found {
        let documented = &rows[code][0];
        for status in statuses {
            assert!(
                documented.contains(&status.to_string()),
                "`{code}` is answered with {status}, the reference says {documented}"
            );
        }
    }
}

#[test]
fn every_metric_is_documented() {
    let found = scan::metric_names(&repo_root());
    assert!(
        found.contains("http_requests_total"),
        "the scan finds metrics: {found:?}"
    );
    let rows = table_rows(&chapter("metrics.md"));
    assert_same("metrics", &found, &rows.keys().cloned().collect());
}

#[test]
fn every_cli_subcommand_and_option_is_documented() {
    use clap::CommandFactory;
    fn walk(prefix: &str, command: &clap::Command, out: &mut BTreeSet<String>) {
        for sub in command.get_subcommands() {
            let path = format!("{prefix}{}", sub.get_name()).trim().to_owned();
            if sub.get_subcommands().next().is_none() {
                out.insert(path.clone());
            }
            for arg in sub.get_arguments() {
                if let Some(long) = arg.get_long() {
                    out.insert(format!("{path} --{long}"));
                }
            }
            walk(&format!("{path} "), sub, out);
        }
    }
    let mut found = BTreeSet::new();
    walk("", &weapp::cli::Cli::command(), &mut found);
    // Plugin commands: `<plugin> <command>` for each one a linked plugin declares.
    for plugin in weapp::plugin::registered() {
        for (command, _) in plugin.commands() {
            found.insert(format!("{} {command}", plugin.name()));
        }
    }
    let rows = table_rows(&chapter("cli.md"));
    assert_same("CLI", &found, &rows.keys().cloned().collect());
}

/// The "Going to production" checklist names every key that production-strict
/// validation can refuse: those an empty production configuration lacks, and those
/// refused for their value.
#[test]
fn the_production_checklist_names_every_key_production_checks() {
    let guide_path = repo_root().join("book/src/guides/production.md");
    let guide = std::fs::read_to_string(&guide_path).unwrap();
    let refused = |loader: weapp::config::ConfigLoader| match loader.load() {
        Err(weapp::config::ConfigError::Invalid(issues)) => {
            issues.into_iter().map(|i| i.key).collect::<Vec<_>>()
        }
        other => panic!("expected invalid values, got {other:?}"),
    };
    let mut keys = refused(
        weapp::config::ConfigLoader::isolated()
            .environment("production")
            .set("wechat.sandbox", true),
    );
    keys.extend(refused(
        weapp::config::ConfigLoader::isolated()
            .environment("production")
            .set("auth.admin_tokens.ops", "short")
            .set("wechat.push.token", "sandbox-only-secret")
            .set(
                "wechat.push.encoding_aes_key",
                "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
            ),
    ));
    assert!(keys.len() >= 8, "{keys:?}");
    for key in keys {
        // `auth.admin_tokens.ops` is documented as `auth.admin_tokens`.
        let documented = [
            key.as_str(),
            key.rsplit_once('.').map_or("", |(parent, _)| parent),
        ];
        assert!(
            documented
                .iter()
                .any(|k| !k.is_empty() && guide.contains(&format!("`{k}`"))),
            "{key} is refused in production but not in the checklist"
        );
    }
}
