//! `templates/app`: generated projects build, pass their tests and start, for each
//! database and with or without the framework's plugins.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::generate::{
    Scratch, assert_formatted, cargo_in, free_port, generate, generate_command, read, repo_root,
    target_dir,
};
use crate::image;

/// Every file a generated app has, whatever the answers.
const APP_FILES: &[&str] = &[
    ".gitignore",
    ".dockerignore",
    "plugins/README.md",
    "Cargo.toml",
    "build.rs",
    "README.md",
    "config/default.toml",
    "config/production.toml",
    "src/main.rs",
    "src/lib.rs",
    "src/feedback/mod.rs",
    "src/feedback/routes.rs",
    "src/feedback/schema.rs",
    "src/feedback/store.rs",
    "migrations/postgres/0001_create_feedback.sql",
    "migrations/mysql/0001_create_feedback.sql",
    "migrations/sqlite/0001_create_feedback.sql",
    "tests/app.rs",
    "miniprogram/api.js",
    "miniprogram/README.md",
    "deploy/Dockerfile",
    "deploy/k8s/deployment.yaml",
    "deploy/k8s/service.yaml",
    "deploy/k8s/hpa.yaml",
    "deploy/k8s/pdb.yaml",
    ".github/workflows/ci.yml",
];

/// Checks the tree and that no template syntax was left behind.
pub(crate) fn assert_fully_rendered(project: &Path, expected_files: &[&str]) {
    for file in expected_files {
        assert!(project.join(file).is_file(), "{file} is missing");
    }
    assert!(!project.join("cargo-generate.toml").exists());
    let mut stack = vec![project.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read generated folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let name = path.display();
            assert!(
                !name.to_string().contains("{{"),
                "{name}: unrendered file name"
            );
            for syntax in ["{{", "{%", "%}"] {
                // GitHub's own `${{ }}` expressions are meant to stay.
                let leftover = text.replace("${{", "");
                assert!(!leftover.contains(syntax), "{name}: unrendered `{syntax}`");
            }
        }
    }
}

/// The test summary lines of `cargo test` output, with how many tests passed.
fn passed_tests(stdout: &str) -> usize {
    stdout
        .lines()
        .filter(|l| l.starts_with("test result: ok."))
        .filter_map(|l| l.split_whitespace().nth(3)?.parse::<usize>().ok())
        .sum()
}

fn get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}

/// Makes `project` a git repository with one commit; returns its short hash.
fn git_commit(project: &Path) -> String {
    let git = |args: &[&str]| {
        let output = Command::new("git")
            .args([
                "-c",
                "user.name=Newcomer",
                "-c",
                "user.email=newcomer@example.com",
            ])
            .args(args)
            .current_dir(project)
            .output()
            .expect("run git");
        assert!(output.status.success(), "git {args:?}: {output:?}");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "Generated from weapp's app template"]);
    git(&["rev-parse", "--short=12", "HEAD"])
}

#[test]
fn a_project_generated_with_default_answers_builds_passes_its_tests_and_starts() {
    // By default weapp comes from crates.io, by version; this checkout stands in.
    let scratch = Scratch::fixed("default").with_weapp_on_crates_io();
    let project = generate("app", scratch.path(), "shop", &[]);
    assert_fully_rendered(&project, APP_FILES);
    let manifest: toml::Table = read(&project, "Cargo.toml").parse().expect("valid TOML");
    for name in ["weapp", "weapp-order", "weapp-message", "weapp-audit"] {
        assert_eq!(
            manifest["workspace"]["dependencies"][name].as_str(),
            Some(env!("CARGO_PKG_VERSION")),
            "{name} is weapp's current version, from crates.io"
        );
    }
    assert!(read(&project, "config/default.toml").contains("url = \"sqlite://data/shop.db\""));
    assert_formatted(&project);
    // The team's repository: /healthz reports its commit, and weapp's apart.
    let commit = git_commit(&project);

    let tested = cargo_in(&project, &["test"]);
    let passed = passed_tests(&String::from_utf8_lossy(&tested.stdout));
    assert!(passed >= 5, "the generated tests ran: {passed} passed");

    // `cargo run` is `cargo build` and an exec of the binary; the build waits for
    // the shared target directory, the app's start-up is what is timed.
    cargo_in(&project, &["build"]);
    let port = free_port();
    let log = scratch.path().join("app.log");
    let mut app = Command::new(target_dir().join("debug/shop"))
        .current_dir(&project)
        .env("WEAPP__SERVER__PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start the generated app");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut health = None;
    while Instant::now() < deadline && health.is_none() {
        if let Ok(Some(status)) = app.try_wait() {
            let output = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("the generated app exited with {status}: {output}");
        }
        health =
            get(port, "/healthz").filter(|a| a.lines().next().is_some_and(|l| l.contains(" 200 ")));
        std::thread::sleep(Duration::from_millis(200));
    }
    let openapi = get(port, "/api/openapi.json");
    let mini_program = health
        .as_ref()
        .map(|_| mini_program_session(&project, port));
    let _ = app.kill();
    let _ = app.wait();
    let health = health.expect("the generated app did not answer /healthz within 60 s");
    let body: serde_json::Value =
        serde_json::from_str(health.split("\r\n\r\n").nth(1).unwrap_or_default())
            .expect("a JSON /healthz");
    assert_eq!(body["git_hash"].as_str(), Some(commit.as_str()), "{body}");
    assert_eq!(
        body["framework_git_hash"].as_str(),
        Some(weapp::FRAMEWORK_GIT_HASH),
        "{body}"
    );
    assert!(
        openapi.is_some_and(|doc| doc.contains("/api/feedback") && doc.contains("/api/orders")),
        "the generated app serves its own and the order plugin's routes"
    );
    // `cargo test` wrote the SDK for the project's routes, and its `api.js` works
    // on it against the running app.
    let sdk_types = read(&project, "miniprogram/weapp-sdk/types/api.d.ts");
    assert!(sdk_types.contains("'POST /api/feedback'") && sdk_types.contains("'POST /api/orders'"));
    let mini_program = mini_program.expect("the app answered");
    assert!(
        mini_program.status.success(),
        "the mini program's calls failed: {mini_program:?}"
    );
    assert!(
        project.join("data/shop.db").is_file(),
        "the SQLite file was created"
    );

    // CI checks out the project alone, and its tests pass with the lock file the
    // first build wrote.
    let checkouts = image::run_ci_job(&project, "test", scratch.path(), &repo_root());
    assert_eq!(checkouts, ["shop"]);

    // The image: the Dockerfile's build stage, by the command the Dockerfile
    // documents (no build context but the project's, the commit as a build
    // argument), in the `dev` profile to share this workspace's build output.
    let (contexts, mut args) = image::documented_build(&project);
    assert!(contexts.is_empty(), "{contexts:?}");
    assert!(
        args.contains(&("GIT_HASH".to_owned(), commit.clone())),
        "{args:?}"
    );
    args.push(("PROFILE".to_owned(), "dev".to_owned()));
    assert_image_runs_the_app(&project, &[], &args, &scratch.path().join("image"));
}

/// The generated `miniprogram/api.js` under Node, with weapp's `wx` stand-in, against
/// the app on `port`: login, feedback sent and read back, the products listed.
fn mini_program_session(project: &Path, port: u16) -> std::process::Output {
    const SCRIPT: &str = r#"
const { createWx } = require(process.env.WX_SHIM)
const { connect } = require(process.env.API_JS)
const baseUrl = process.env.BASE_URL
;(async () => {
  const backend = connect(createWx({ baseUrl, openid: 'o_generated_app' }), baseUrl)
  await backend.login()
  const sent = await backend.sendFeedback('小程序里写的')
  const mine = await backend.myFeedback()
  if (mine.items.length !== 1 || mine.items[0].id !== sent.id) throw new Error(JSON.stringify(mine))
  const products = await backend.products()
  if (!Array.isArray(products.items)) throw new Error(JSON.stringify(products))
  const me = await backend.me()
  if (!me.id) throw new Error(JSON.stringify(me))
})().catch((e) => { console.error(e); process.exit(1) })
"#;
    Command::new("node")
        .args(["-e", SCRIPT])
        .env("WX_SHIM", repo_root().join("framework/sdk/test/wx-shim.js"))
        .env("API_JS", project.join("miniprogram/api.js"))
        .env("BASE_URL", format!("http://127.0.0.1:{port}"))
        .output()
        .expect("node runs (Node.js 18 or newer)")
}

/// Replays the image's build stage and checks its binary is the app with its plugins.
fn assert_image_runs_the_app(
    project: &Path,
    contexts: &[(String, std::path::PathBuf)],
    args: &[(String, String)],
    image_root: &Path,
) {
    let contexts: Vec<(&str, &Path)> = contexts
        .iter()
        .map(|(n, p)| (n.as_str(), p.as_path()))
        .collect();
    let args: Vec<(&str, &str)> = args.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let built = image::build_image(project, &contexts, &args, image_root);
    let help = Command::new(&built[0])
        .arg("--help")
        .output()
        .expect("run the built binary");
    assert!(
        String::from_utf8_lossy(&help.stdout).contains("audit verify"),
        "the image's binary is the app with its plugins"
    );
}

/// A team building on an unreleased weapp: a checkout beside the project
/// (`weapp_source = "../weapp"`) makes path dependencies; CI checks out both side by
/// side, and the image build takes the checkout as a named build context.
#[test]
fn a_project_beside_a_weapp_checkout_builds_in_ci_and_in_its_image() {
    let scratch = Scratch::fixed("beside");
    std::os::unix::fs::symlink(repo_root(), scratch.path().join("weapp")).expect("symlink");
    let project = generate(
        "app",
        scratch.path(),
        "shop",
        &[("weapp_source", "../weapp")],
    );
    assert_fully_rendered(&project, APP_FILES);
    let manifest = read(&project, "Cargo.toml");
    for dependency in ["weapp-order", "weapp-message", "weapp-audit"] {
        assert!(
            manifest.contains(&format!("{dependency} = {{ path = \"../weapp/plugins/")),
            "{dependency} is a path dependency on the checkout: {manifest}"
        );
    }
    // CI: the workflow checks out the project and weapp side by side, as here, and
    // runs the tests with the lock file committed beside the project.
    cargo_in(&project, &["generate-lockfile"]);
    let checkouts = image::run_ci_job(&project, "test", scratch.path(), &repo_root());
    assert_eq!(checkouts, ["shop", "weapp"]);

    let (contexts, mut args) = image::documented_build(&project);
    assert_eq!(contexts.len(), 1, "{contexts:?}");
    args.push(("PROFILE".to_owned(), "dev".to_owned()));
    let image_root = scratch.path().join("image");
    assert_image_runs_the_app(&project, &contexts, &args, &image_root);
    assert!(
        !image_root.join("build/weapp/target").exists(),
        "weapp's .dockerignore keeps its build output out of the image"
    );
    assert!(
        image_root
            .join("build/weapp/framework/Cargo.toml")
            .is_file()
    );
}

#[test]
fn a_postgres_project_with_every_plugin_passes_its_tests() {
    let scratch = Scratch::fixed("postgres");
    let root = repo_root();
    let project = generate(
        "app",
        scratch.path(),
        "pg-shop",
        &[
            ("database", "postgres"),
            ("appid", "wx1234567890abcdef"),
            ("with_order", "true"),
            ("with_message", "true"),
            ("with_audit", "true"),
            ("weapp_source", root.to_str().expect("UTF-8 path")),
        ],
    );
    assert_fully_rendered(&project, APP_FILES);
    let config = read(&project, "config/default.toml");
    assert!(config.contains("url = \"postgres://postgres@127.0.0.1:5432/pg_shop\""));
    assert!(config.contains("appid = \"wx1234567890abcdef\""));
    assert!(read(&project, "tests/app.rs").contains("Backend::Postgres"));
    assert_formatted(&project);
    let tested = cargo_in(&project, &["test"]);
    assert!(passed_tests(&String::from_utf8_lossy(&tested.stdout)) >= 5);
}

#[test]
fn a_mysql_project_without_the_framework_plugins_passes_its_tests() {
    let scratch = Scratch::fixed("mysql");
    let root = repo_root();
    let project = generate(
        "app",
        scratch.path(),
        "my-shop",
        &[
            ("database", "mysql"),
            ("appid", "wxfedcba9876543210"),
            ("with_order", "false"),
            ("with_message", "false"),
            ("with_audit", "false"),
            ("weapp_source", root.to_str().expect("UTF-8 path")),
        ],
    );
    assert_fully_rendered(&project, APP_FILES);
    let manifest = read(&project, "Cargo.toml");
    assert!(!manifest.contains("weapp-order") && !manifest.contains("weapp-audit"));
    assert!(!read(&project, "src/lib.rs").contains("use weapp_"));
    assert!(!read(&project, "config/default.toml").contains("[order"));
    assert!(read(&project, ".github/workflows/ci.yml").contains("mariadb"));
    assert_formatted(&project);
    let tested = cargo_in(&project, &["test"]);
    assert!(passed_tests(&String::from_utf8_lossy(&tested.stdout)) >= 5);
}

#[test]
fn a_git_source_makes_git_dependencies() {
    let scratch = Scratch::new("git");
    let url = "https://git.example.com/team/weapp.git";
    let project = generate("app", scratch.path(), "git-shop", &[("weapp_source", url)]);
    assert_fully_rendered(&project, APP_FILES);
    let manifest: toml::Table = read(&project, "Cargo.toml").parse().expect("valid TOML");
    let shared = &manifest["workspace"]["dependencies"];
    for name in ["weapp", "weapp-order", "weapp-message", "weapp-audit"] {
        let dependency = &shared[name];
        assert_eq!(
            dependency["git"].as_str(),
            Some(url),
            "{name}: {dependency}"
        );
        assert!(dependency.get("path").is_none());
        assert_eq!(
            manifest["dependencies"][name]["workspace"].as_bool(),
            Some(true)
        );
    }
    // The test helpers come with weapp itself: no second build with other features.
    assert!(manifest["dev-dependencies"].get("weapp").is_none());
    // Docker and CI need nothing beside the project: cargo fetches weapp.
    let dockerfile = read(&project, "deploy/Dockerfile");
    assert!(!dockerfile.contains("--from=weapp") && !dockerfile.contains("--build-context"));
    let workflow = read(&project, ".github/workflows/ci.yml");
    assert!(!workflow.contains("WEAPP_REPOSITORY"), "{workflow}");
}

#[test]
fn a_weapp_source_without_the_framework_is_refused_before_anything_is_generated() {
    let scratch = Scratch::new("no-weapp");
    for source in ["../weapp", "/nonexistent/weapp", "../../templates"] {
        let output = generate_command("app", scratch.path(), "lost", &[("weapp_source", source)])
            .output()
            .expect("run cargo generate");
        assert!(
            !output.status.success(),
            "weapp_source={source} was accepted"
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!(
                "weapp_source = \"{source}\" is not a weapp checkout"
            )) && stderr.contains("framework/Cargo.toml does not exist"),
            "{stderr}"
        );
        assert!(
            !scratch.path().join("lost").exists(),
            "nothing is left behind for weapp_source={source}"
        );
    }
}

#[test]
fn bad_answers_are_refused() {
    let scratch = Scratch::new("refused");
    let output = generate_command("app", scratch.path(), "bad", &[("database", "oracle")])
        .output()
        .expect("run cargo generate");
    assert!(!output.status.success(), "database=oracle was accepted");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("not a valid value for database"),
        "{stderr}"
    );
    assert!(!scratch.path().join("bad/Cargo.toml").exists());
}
