//! Running cargo-generate and cargo on generated projects.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// This repository's root.
pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Where generated projects build: this workspace's target directory (or the one
/// `CARGO_TARGET_DIR` names), so dependencies compile once for all of them.
pub(crate) fn target_dir() -> PathBuf {
    // A relative CARGO_TARGET_DIR is relative to where cargo ran: the workspace.
    std::env::var_os("CARGO_TARGET_DIR")
        .map(|dir| repo_root().join(dir))
        .unwrap_or_else(|| repo_root().join("target"))
}

/// A port nothing listens on now, for an app a test starts.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A folder under the system temp dir, removed with this value.
pub(crate) struct Scratch(PathBuf);

impl Scratch {
    /// A new, empty folder.
    pub(crate) fn new(label: &str) -> Scratch {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let dir = std::env::temp_dir().join(format!(
            "weapp-scaffold-{label}-{}-{nanos}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create a scratch folder");
        Scratch(dir)
    }

    /// The same folder on every run of this checkout's tests (emptied first), for a
    /// test that builds there: cargo keys build output by the paths of the crates, so
    /// a new folder on every run would leave a new copy of weapp's build in the
    /// shared target directory each time, gigabytes after a few dozen runs.
    pub(crate) fn fixed(label: &str) -> Scratch {
        use std::hash::{Hash, Hasher};
        let mut checkout = std::collections::hash_map::DefaultHasher::new();
        repo_root().hash(&mut checkout);
        let dir =
            std::env::temp_dir().join(format!("weapp-scaffold-{label}-{:016x}", checkout.finish()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a scratch folder");
        Scratch(dir)
    }

    /// Its path.
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    /// Makes this checkout's crates stand in for weapp's releases on crates.io for
    /// every project under this folder (a `[patch.crates-io]` in its
    /// `.cargo/config.toml`, which cargo reads from the folders above a project), so a
    /// project that depends on weapp by version builds offline against the working
    /// tree. The generated files stay as a team gets them.
    pub(crate) fn with_weapp_on_crates_io(self) -> Scratch {
        let root = repo_root();
        let mut config = String::from("[patch.crates-io]\n");
        for (name, folder) in PUBLISHED {
            let path = root.join(folder);
            config.push_str(&format!(
                "{name} = {{ path = {:?} }}\n",
                path.display().to_string()
            ));
        }
        std::fs::create_dir_all(self.0.join(".cargo")).expect("create .cargo");
        std::fs::write(self.0.join(".cargo/config.toml"), config).expect("write the patch");
        self
    }
}

/// The crates a generated project may name, with their folders in this checkout.
const PUBLISHED: [(&str, &str); 5] = [
    ("weapp", "framework"),
    ("weapp-pay", "plugins/pay"),
    ("weapp-order", "plugins/order"),
    ("weapp-message", "plugins/message"),
    ("weapp-audit", "plugins/audit"),
];

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
}

fn describe(output: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `cargo generate` of `templates/<template>` into `into/<name>`, non-interactive:
/// every placeholder not in `defines` takes its default.
pub(crate) fn generate_command(
    template: &str,
    into: &Path,
    name: &str,
    defines: &[(&str, &str)],
) -> Command {
    let mut command = cargo();
    command
        .arg("generate")
        .arg("--path")
        .arg(repo_root().join("templates").join(template))
        .args(["--name", name, "--vcs", "none", "--silent"])
        .arg("--destination")
        .arg(into);
    // A checkout as weapp_source is checked by the templates' hook with one shell
    // `test -f`, which --silent runs only with --allow-commands; the default
    // (crates.io) needs no command, as the templates' README says.
    if defines
        .iter()
        .any(|(key, value)| *key == "weapp_source" && *value != "crates.io")
    {
        command.arg("--allow-commands");
    }
    for (key, value) in defines {
        command.arg("--define").arg(format!("{key}={value}"));
    }
    command
}

/// Runs [`generate_command`] and returns the new project's path; panics with the
/// output if it fails.
pub(crate) fn generate(
    template: &str,
    into: &Path,
    name: &str,
    defines: &[(&str, &str)],
) -> PathBuf {
    let output = generate_command(template, into, name, defines)
        .output()
        .expect("run cargo");
    let missing = String::from_utf8_lossy(&output.stderr).contains("no such command");
    assert!(
        !missing,
        "cargo-generate is not installed: `cargo install --locked cargo-generate@0.23.5` \
         (tests/run.sh installs it)"
    );
    assert!(
        output.status.success(),
        "cargo generate failed: {}",
        describe(&output)
    );
    let project = into.join(name);
    assert!(
        project.join("Cargo.toml").is_file(),
        "{} was not generated",
        project.display()
    );
    project
}

/// Runs `cargo <args>` in `project`, offline, building into this workspace's target
/// directory; the project resolves its own dependency versions (its own
/// `Cargo.lock`), as a team's does. Panics with the output if it fails.
pub(crate) fn cargo_in(project: &Path, args: &[&str]) -> Output {
    let output = cargo()
        .args(args)
        .arg("--offline")
        .current_dir(project)
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .expect("run cargo");
    assert!(
        output.status.success(),
        "cargo {} in {} failed: {}",
        args.join(" "),
        project.display(),
        describe(&output)
    );
    output
}

/// Checks that the generated code is as `cargo fmt` would write it.
pub(crate) fn assert_formatted(project: &Path) {
    let output = cargo()
        .args(["fmt", "--check"])
        .current_dir(project)
        .output()
        .expect("run cargo fmt");
    assert!(
        output.status.success(),
        "generated code is not rustfmt-clean: {}",
        describe(&output)
    );
}

/// A file of a generated project.
pub(crate) fn read(project: &Path, path: &str) -> String {
    std::fs::read_to_string(project.join(path))
        .unwrap_or_else(|e| panic!("{}: {e}", project.join(path).display()))
}
