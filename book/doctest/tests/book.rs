//! The book builds without warnings, and every chapter is compiled as doctests.

use std::path::{Path, PathBuf};
use std::process::Command;

fn book_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Chapter paths listed in SUMMARY.md, relative to `src/`.
fn summary_chapters() -> Vec<String> {
    let summary = std::fs::read_to_string(book_dir().join("src/SUMMARY.md")).expect("SUMMARY.md");
    summary
        .split("](")
        .skip(1)
        .filter_map(|rest| rest.split_once(')').map(|(path, _)| path.to_owned()))
        .collect()
}

#[test]
fn every_chapter_is_in_the_summary_and_compiled_as_doctests() {
    let chapters = summary_chapters();
    assert!(chapters.len() >= 20, "{chapters:?}");
    let lib = std::fs::read_to_string(book_dir().join("doctest/lib.rs")).expect("lib.rs");
    for chapter in &chapters {
        assert!(
            book_dir().join("src").join(chapter).is_file(),
            "{chapter} is missing"
        );
        assert!(
            lib.contains(&format!("include_str!(\"../src/{chapter}\")")),
            "{chapter} is not included in doctest/lib.rs, so its code is not compiled"
        );
    }
    let mut stack = vec![book_dir().join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                let relative = path
                    .strip_prefix(book_dir().join("src"))
                    .expect("under src");
                let relative = relative.to_str().expect("UTF-8").to_owned();
                assert!(
                    relative == "SUMMARY.md" || chapters.contains(&relative),
                    "{relative} is not listed in SUMMARY.md"
                );
            }
        }
    }
}

#[test]
fn every_code_block_says_its_language() {
    // rustdoc compiles unlabelled blocks as Rust; a shell or JSON block without a
    // label would fail the doctests, or worse, be silently mistaken.
    for chapter in summary_chapters() {
        let text = std::fs::read_to_string(book_dir().join("src").join(&chapter)).expect("chapter");
        let mut open = false;
        for (n, line) in text.lines().enumerate() {
            if let Some(info) = line.trim_start().strip_prefix("```") {
                if !open {
                    assert!(
                        !info.trim().is_empty(),
                        "{chapter}:{}: a code block without a language",
                        n + 1
                    );
                }
                open = !open;
            }
        }
        assert!(!open, "{chapter}: an unclosed code block");
    }
}

#[test]
fn every_link_between_chapters_points_at_a_chapter() {
    for chapter in summary_chapters() {
        let path = book_dir().join("src").join(&chapter);
        let text = std::fs::read_to_string(&path).expect("chapter");
        for target in text
            .split("](")
            .skip(1)
            .filter_map(|rest| rest.split_once(')'))
        {
            let link = target.0.split('#').next().unwrap_or_default();
            if link.is_empty() || link.contains("://") || !link.ends_with(".md") {
                continue;
            }
            let resolved = path.parent().expect("in a folder").join(link);
            assert!(
                resolved.is_file(),
                "{chapter} links to {link}, which does not exist"
            );
        }
    }
}

#[test]
fn the_book_builds_without_warnings() {
    let out = std::env::temp_dir().join(format!("weapp-book-{}", std::process::id()));
    let result = Command::new("mdbook")
        .arg("build")
        .arg(book_dir())
        .arg("--dest-dir")
        .arg(&out)
        .output();
    let output = result.unwrap_or_else(|e| {
        panic!(
            "mdbook is not installed ({e}): `cargo install --locked mdbook` (tests/run.sh installs it)"
        )
    });
    let stderr = String::from_utf8_lossy(&output.stderr);
    let _ = std::fs::remove_dir_all(&out);
    assert!(output.status.success(), "mdbook build failed:\n{stderr}");
    for line in stderr.lines() {
        assert!(
            !line.contains("WARN") && !line.contains("ERROR"),
            "mdbook warned: {line}\n{stderr}"
        );
    }
}

/// Every `cargo generate` the book shows runs without a terminal: `--silent`, and
/// `--allow-commands` where it names a weapp checkout as `weapp_source` (the
/// template checks it with one shell command); the default, weapp's released crates,
/// needs none. (`tests/scaffold/book_run.rs` runs them.)
#[test]
fn every_cargo_generate_in_the_book_runs_without_a_terminal() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../src");
    let mut found = 0;
    let mut chapters = vec![src.clone()];
    while let Some(dir) = chapters.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                chapters.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "md") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // A command continues over `\`-ended lines.
            let joined = text.replace("\\\n", " ");
            for line in joined
                .lines()
                .filter(|l| l.trim_start().starts_with("cargo generate"))
            {
                found += 1;
                assert!(line.contains("--silent"), "{}: {line}", path.display());
                let checkout = line.contains("weapp_source=") && !line.contains("crates.io");
                assert!(
                    !checkout || line.contains("--allow-commands"),
                    "{}: {line}",
                    path.display()
                );
            }
        }
    }
    assert!(found >= 3, "the book shows cargo generate: {found}");
}
