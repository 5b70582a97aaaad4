//! Records the git commit for `/healthz`. `WEAPP_GIT_HASH` overrides it (for builds
//! outside a git checkout, e.g. in a Docker stage).
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn main() {
    println!("cargo:rerun-if-env-changed=WEAPP_GIT_HASH");
    let hash = std::env::var("WEAPP_GIT_HASH")
        .ok()
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    if let Some(head_log) = git(&["rev-parse", "--git-path", "logs/HEAD"]) {
        // Moves on every commit and checkout, so the hash stays current.
        let path = std::path::Path::new(&head_log);
        if path.exists() {
            println!(
                "cargo:rerun-if-changed={}",
                path.canonicalize().unwrap_or(path.into()).display()
            );
        }
    }
    println!("cargo:rustc-env=WEAPP_GIT_HASH={hash}");
}
