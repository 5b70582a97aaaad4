//! The book's newcomer chapters run as a reader runs them: every shell block in
//! order in one shell, beside a checkout of weapp (a link to this repository), long
//! runners (`cargo run`) in the background until the app answers, Rust blocks saved
//! as the files of the generated project they name, and each output the book shows
//! compared with the real one.
//!
//! A chapter steers this with HTML comments, invisible in the rendered book, on the
//! line before a block:
//! - `<!-- book-run: background -->` (or `background, in=<folder>`): each command runs
//!   in the background, like in a second terminal, after what ran there before is
//!   stopped; the chapter goes on once `/healthz` answers.
//! - `<!-- book-run: file=src/paid_orders.rs -->`: the Rust block is that file
//!   (hidden `# ` lines, there for the doc tests, are left out).
//! - `<!-- book-run: skip -->`: not run here (the chapter says why it is special).
//!
//! Inside a shell block, a full-line comment right after a command is the output the
//! book shows for it: `# {"status":"paid",...}` is JSON whose keys must all be in the
//! real output (`"..."` matches any value, a trailing `,...` any further keys), and
//! `# => text` is text the output must contain (`...` matches anything).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::generate::{Scratch, free_port, repo_root, target_dir};

/// How a fenced block takes part.
#[derive(Debug, PartialEq)]
enum Mode {
    Run,
    /// In the background, from this folder (relative to where the chapter is).
    Background(Option<String>),
    File(String),
    Skip,
}

/// A fenced block of a chapter, with its language and how it takes part.
#[derive(Debug)]
struct Block {
    language: String,
    mode: Mode,
    text: String,
}

fn blocks(chapter: &str) -> Vec<Block> {
    let mut found = Vec::new();
    let mut directive: Option<String> = None;
    let mut lines = chapter.lines();
    while let Some(line) = lines.next() {
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix("<!-- book-run:") {
            directive = Some(rest.trim_end_matches("-->").trim().to_owned());
            continue;
        }
        let Some(info) = trimmed.strip_prefix("```") else {
            if !trimmed.is_empty() {
                directive = None;
            }
            continue;
        };
        let language = info.split(',').next().unwrap_or_default().to_owned();
        let mut text = String::new();
        for line in lines.by_ref() {
            if line.trim_start().starts_with("```") {
                break;
            }
            text.push_str(line);
            text.push('\n');
        }
        let mode = match directive.take().as_deref() {
            None => Mode::Run,
            Some("background") => Mode::Background(None),
            Some("skip") => Mode::Skip,
            Some(other) => {
                if let Some(dir) = other.strip_prefix("background, in=") {
                    Mode::Background(Some(dir.to_owned()))
                } else if let Some(path) = other.strip_prefix("file=") {
                    Mode::File(path.to_owned())
                } else {
                    panic!("unknown book-run directive {other:?}")
                }
            }
        };
        found.push(Block {
            language,
            mode,
            text,
        });
    }
    found
}

/// What the book shows a command printing.
#[derive(Debug)]
enum Shown {
    Json(Value),
    Text(String),
}

/// A shell block's commands (continuation lines joined), each with what the book
/// shows it printing, if anything.
fn commands(block: &str) -> Vec<(String, Option<Shown>)> {
    let mut found: Vec<(String, Option<Shown>)> = Vec::new();
    let mut current = String::new();
    for line in block.lines() {
        let trimmed = line.trim();
        if current.is_empty() && trimmed.starts_with('#') {
            let comment = trimmed.trim_start_matches('#').trim();
            let shown = if let Some(text) = comment.strip_prefix("=> ") {
                Some(Shown::Text(text.to_owned()))
            } else if comment.starts_with('{') || comment.starts_with('[') {
                let json = comment.replace(",...}", "}").replace(", ...}", "}");
                let value = serde_json::from_str(&json)
                    .unwrap_or_else(|e| panic!("the book shows invalid JSON {comment}: {e}"));
                Some(Shown::Json(value))
            } else {
                None
            };
            if let (Some(shown), Some(last)) = (shown, found.last_mut()) {
                assert!(last.1.is_none(), "two outputs shown for {}", last.0);
                last.1 = Some(shown);
            }
            continue;
        }
        if trimmed.is_empty() {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push('\\');
                current.push('\n');
            }
            None => {
                current.push_str(line);
                found.push((std::mem::take(&mut current), None));
            }
        }
    }
    found
}

/// Whether `actual` has every key of `shown`, recursively; `"..."` matches anything.
fn json_matches(shown: &Value, actual: &Value) -> bool {
    match (shown, actual) {
        (Value::String(s), _) if s == "..." => true,
        (Value::Object(shown), Value::Object(actual)) => shown
            .iter()
            .all(|(k, v)| actual.get(k).is_some_and(|a| json_matches(v, a))),
        (Value::Array(shown), Value::Array(actual)) => {
            shown.len() == actual.len() && shown.iter().zip(actual).all(|(s, a)| json_matches(s, a))
        }
        (shown, actual) => shown == actual,
    }
}

/// Whether `actual` holds the fragments of `shown` between its `...`, in order.
fn text_matches(shown: &str, actual: &str) -> bool {
    let mut rest = actual;
    for fragment in shown.split("...").map(str::trim).filter(|f| !f.is_empty()) {
        match rest.find(fragment) {
            Some(at) => rest = &rest[at + fragment.len()..],
            None => return false,
        }
    }
    true
}

fn check_shown(command: &str, shown: &Shown, actual: &str) {
    match shown {
        Shown::Json(value) => {
            let parsed: Value = serde_json::from_str(actual.trim())
                .unwrap_or_else(|e| panic!("{command}\nprinted no JSON ({e}): {actual}"));
            assert!(
                json_matches(value, &parsed),
                "{command}\nthe book shows {value}\nbut it printed {actual}"
            );
        }
        Shown::Text(text) => assert!(
            text_matches(text, actual),
            "{command}\nthe book shows {text:?}\nbut it printed {actual}"
        ),
    }
}

/// Quotes `text` for sh.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Runs `chapter` (a path under `book/src`) in `dir`, which holds a link to this
/// checkout named `weapp` (and the `.cargo` folder standing in for crates.io) and
/// nothing else of a previous chapter; the app it starts
/// listens on a free port instead of 8080. Returns how long it took.
pub(crate) fn run_chapter(dir: &Path, chapter: &str) -> std::time::Duration {
    let started = std::time::Instant::now();
    let text = std::fs::read_to_string(repo_root().join("book/src").join(chapter))
        .unwrap_or_else(|e| panic!("{chapter}: {e}"));
    for entry in std::fs::read_dir(dir).expect("read the chapter's folder") {
        let path = entry.expect("entry").path();
        if path
            .file_name()
            .is_some_and(|n| n != "weapp" && n != ".cargo")
        {
            let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
        }
    }
    if !dir.join("weapp").exists() {
        std::os::unix::fs::symlink(repo_root(), dir.join("weapp")).expect("link weapp");
    }
    let out = dir.join(".book-run");
    std::fs::create_dir_all(&out).expect("output folder");
    let port = free_port();

    let mut script = String::from("set -euo pipefail\n");
    // Stops what runs in the background and waits until its port is free again, so
    // the next app to start is the one that answers.
    script.push_str(&format!(
        "stop_background() {{\n\
           for pid in $(cat {out}/pids 2>/dev/null); do kill -TERM -- -$pid 2>/dev/null || true; done\n\
           for i in $(seq 1 600); do\n\
             curl -s -o /dev/null http://127.0.0.1:{port}/healthz || break\n\
             if [ $i = 300 ]; then for pid in $(cat {out}/pids); do kill -KILL -- -$pid 2>/dev/null || true; done; fi\n\
             sleep 0.1\n\
           done\n\
           rm -f {out}/pids\n\
         }}\n\
         trap stop_background EXIT\n",
        out = quoted(out.to_str().expect("UTF-8"))
    ));
    let mut checks = Vec::new();
    let mut ran = 0;
    for block in blocks(&text) {
        let local = |command: &str| {
            command
                .replace("localhost:8080", &format!("127.0.0.1:{port}"))
                .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
        };
        match (&block.mode, block.language.as_str()) {
            (Mode::Skip, _) => {}
            (Mode::File(path), _) => {
                let body: String = block
                    .text
                    .lines()
                    .filter(|l| !(l.trim() == "#" || l.trim_start().starts_with("# ")))
                    .map(|l| format!("{l}\n"))
                    .collect();
                script.push_str(&format!(
                    "mkdir -p \"$(dirname {p})\" && printf '%s' {body} > {p}\n",
                    p = quoted(path),
                    body = quoted(&body)
                ));
                ran += 1;
            }
            (Mode::Background(dir), "sh") => {
                for (command, _) in commands(&block.text) {
                    let n = checks.len() + ran;
                    let log = out.join(format!("background-{n}.log"));
                    let command = match dir {
                        Some(dir) => format!("cd {} && {}", quoted(dir), local(&command)),
                        None => local(&command),
                    };
                    // setsid: the command, its cargo and the app it starts form one
                    // process group, stopped together (a reader's Ctrl-C).
                    script.push_str(&format!(
                        "stop_background\n\
                         setsid bash -c {c} < /dev/null > {log} 2>&1 & echo $! >> {out}/pids\n\
                         for i in $(seq 1 1200); do\n\
                           if curl -sf http://127.0.0.1:{port}/healthz >/dev/null; then break; fi\n\
                           if ! kill -0 $! 2>/dev/null; then echo 'background command exited:' >&2; cat {log} >&2; exit 1; fi\n\
                           sleep 0.5\n\
                         done\n\
                         curl -sf http://127.0.0.1:{port}/healthz >/dev/null\n",
                        c = quoted(&command),
                        log = quoted(log.to_str().expect("UTF-8")),
                        out = quoted(out.to_str().expect("UTF-8")),
                    ));
                    ran += 1;
                }
            }
            (Mode::Run, "sh") => {
                for (command, shown) in commands(&block.text) {
                    let command = local(&command);
                    match shown {
                        Some(shown) => {
                            let file = out.join(format!("output-{}", checks.len()));
                            script.push_str(&format!(
                                "{{ {command}\n}} > {f}\ncat {f}\n",
                                f = quoted(file.to_str().expect("UTF-8"))
                            ));
                            checks.push((command, shown, file));
                        }
                        None => script.push_str(&format!("{command}\n")),
                    }
                    ran += 1;
                }
            }
            // Other blocks show code or output; the doc tests compile the Rust ones.
            _ => {}
        }
    }
    assert!(ran > 0, "{chapter}: nothing to run");

    let output = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir())
        .env("CARGO_NET_OFFLINE", "true")
        .env("WEAPP__SERVER__PORT", port.to_string())
        .output()
        .expect("run bash");
    assert!(
        output.status.success(),
        "{chapter} failed as written:\n--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    for (command, shown, file) in &checks {
        let actual = std::fs::read_to_string(file).unwrap_or_default();
        check_shown(command, shown, &actual);
    }
    started.elapsed()
}

/// The newcomer's path through the book, in the order a reader takes it, in one
/// folder (so weapp and the generated project's dependencies compile once): the
/// quick start, the shop tutorial (catalogue, login, order, payment, a plugin of the
/// shop's own and its test), and the plugin guide (a plugin generated into the app,
/// linked, tested and serving).
#[test]
fn the_newcomer_chapters_run_as_written() {
    // The reader's weapp comes from crates.io; this checkout stands in for it.
    let scratch = Scratch::fixed("book").with_weapp_on_crates_io();
    for chapter in [
        "quick-start.md",
        "tutorial/shop.md",
        "guides/writing-a-plugin.md",
    ] {
        let took = run_chapter(scratch.path(), chapter);
        eprintln!("{chapter} ran as written in {:.1} s", took.as_secs_f64());
    }
}

#[test]
fn shown_outputs_match_as_documented() {
    let shown: Value =
        serde_json::from_str(r#"{"order_id":1,"status":"...","items":[{"qty":2}]}"#).unwrap();
    let actual: Value = serde_json::from_str(
        r#"{"order_id":1,"status":"paid","total_fen":9600,"items":[{"qty":2,"product_id":1}]}"#,
    )
    .unwrap();
    assert!(json_matches(&shown, &actual));
    let other: Value =
        serde_json::from_str(r#"{"order_id":2,"status":"paid","items":[{"qty":2}]}"#).unwrap();
    assert!(!json_matches(&shown, &other));
    assert!(text_matches(
        "added product ...: Oolong",
        "added product 4: Oolong 乌龙茶\n"
    ));
    assert!(!text_matches("2 of 3 ... added", "3 of 3 product(s) added"));
    let parsed = commands(
        "curl -s localhost:8080/a \\\n  -d '{}'\n# {\"code\":\"SUCCESS\",...}\n# a plain comment\necho hi\n# => hi\n",
    );
    assert_eq!(parsed.len(), 2);
    assert!(matches!(&parsed[0].1, Some(Shown::Json(v)) if v["code"] == "SUCCESS"));
    assert!(matches!(&parsed[1].1, Some(Shown::Text(t)) if t == "hi"));
}
