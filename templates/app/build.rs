//! Records this project's git commit for `/healthz` (`APP_GIT_HASH`). Where there is
//! no repository (a Docker build, whose context leaves out .git), set `APP_GIT_HASH`
//! yourself; the Dockerfile takes it as `--build-arg GIT_HASH=...`.
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn main() {
    println!("cargo:rerun-if-env-changed=APP_GIT_HASH");
    let hash = std::env::var("APP_GIT_HASH")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    if let Some(head_log) = git(&["rev-parse", "--git-path", "logs/HEAD"]) {
        // Moves on every commit and checkout, so the hash stays current.
        let path = std::path::Path::new(&head_log);
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    println!("cargo:rustc-env=APP_GIT_HASH={hash}");
}
