//! A generated project built the way its Dockerfile and CI workflow build it, without
//! Docker or GitHub: the build stage's `WORKDIR`, `COPY` and `RUN` steps replayed in a
//! folder standing for the image's root (honouring each context's `.dockerignore`), and
//! the workflow's checkouts laid out and its `run` steps run where they say.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use yaml_rust2::YamlLoader;

use crate::generate::target_dir;

/// `path` with `.` and `..` resolved lexically, as Docker and the kernel resolve
/// `/build/app/../weapp`; `..` stops at the root.
fn clean(path: &str) -> PathBuf {
    let mut parts: Vec<&str> = Vec::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str().expect("UTF-8 path")),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    parts.iter().collect()
}

/// One `.dockerignore` pattern against a context-relative path, segment by segment:
/// `*` within a segment, `**` for any number of segments; a pattern matching a
/// folder leaves out everything in it.
fn ignored_by(pattern: &[&str], path: &[&str]) -> bool {
    match (pattern.first(), path.first()) {
        (None, _) => true,
        (Some(&"**"), _) => {
            ignored_by(&pattern[1..], path) || (!path.is_empty() && ignored_by(pattern, &path[1..]))
        }
        (Some(_), None) => false,
        (Some(glob), Some(segment)) => {
            segment_matches(glob, segment) && ignored_by(&pattern[1..], &path[1..])
        }
    }
}

fn segment_matches(glob: &str, segment: &str) -> bool {
    match glob.split_once('*') {
        None => glob == segment,
        Some((prefix, rest)) => {
            segment.starts_with(prefix)
                && (0..=segment.len() - prefix.len()).any(|skip| {
                    let tail = &segment[prefix.len() + skip..];
                    segment.is_char_boundary(prefix.len() + skip) && segment_matches(rest, tail)
                })
        }
    }
}

/// A build context: a folder and its `.dockerignore`.
struct Context {
    root: PathBuf,
    ignore: Vec<Vec<String>>,
}

impl Context {
    fn new(root: &Path) -> Context {
        let ignore = std::fs::read_to_string(root.join(".dockerignore"))
            .unwrap_or_default()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                l.trim_start_matches('/')
                    .split('/')
                    .map(str::to_owned)
                    .collect()
            })
            .collect();
        Context {
            root: root.to_path_buf(),
            ignore,
        }
    }

    fn ignores(&self, relative: &Path) -> bool {
        let path: Vec<&str> = relative.iter().filter_map(|s| s.to_str()).collect();
        self.ignore.iter().any(|pattern| {
            let pattern: Vec<&str> = pattern.iter().map(String::as_str).collect();
            ignored_by(&pattern, &path)
        })
    }

    /// Copies `source` (context-relative) into `dest`, leaving out what is ignored;
    /// symbolic links are followed, as Docker sends their targets.
    fn copy(&self, source: &str, dest: &Path) {
        let mut stack = vec![clean(source)];
        while let Some(relative) = stack.pop() {
            let from = self.root.join(&relative);
            if !relative.as_os_str().is_empty() && self.ignores(&relative) {
                continue;
            }
            let to = dest.join(relative.strip_prefix(clean(source)).expect("under source"));
            if from.is_dir() {
                std::fs::create_dir_all(&to).expect("create a folder");
                for entry in std::fs::read_dir(&from).expect("read a context folder") {
                    let name = entry.expect("entry").file_name();
                    stack.push(relative.join(name));
                }
            } else {
                std::fs::copy(&from, &to)
                    .unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
            }
        }
    }
}

/// Instructions of a Dockerfile, continuation lines joined, comments dropped.
fn instructions(dockerfile: &str) -> Vec<(String, String)> {
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let line = line.trim();
        if current.is_empty() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => current.push_str(head),
            None => {
                current.push_str(line);
                joined.push(std::mem::take(&mut current));
            }
        }
    }
    joined
        .into_iter()
        .map(|l| match l.split_once(' ') {
            Some((word, rest)) => (word.to_ascii_uppercase(), rest.trim().to_owned()),
            None => (l.to_ascii_uppercase(), String::new()),
        })
        .collect()
}

/// Replays the Dockerfile's build stage (`FROM … AS build`) of `project` in
/// `image_root`: `named` are the `--build-context` folders, `args` the `--build-arg`s.
/// Checks that every `COPY --from=build` of the final stage finds its file, and
/// returns the final stage's `COPY --from=build` sources, in `image_root`.
pub(crate) fn build_image(
    project: &Path,
    named: &[(&str, &Path)],
    args: &[(&str, &str)],
    image_root: &Path,
) -> Vec<PathBuf> {
    let dockerfile =
        std::fs::read_to_string(project.join("deploy/Dockerfile")).expect("Dockerfile");
    let main = Context::new(project);
    let named: BTreeMap<&str, Context> = named.iter().map(|(n, p)| (*n, Context::new(p))).collect();
    let mut build_args: BTreeMap<String, String> = BTreeMap::new();
    let mut workdir = PathBuf::from("/");
    let mut stage = String::new();
    let mut outputs = Vec::new();
    let in_image = |path: &Path| image_root.join(clean(path.to_str().expect("UTF-8")));
    for (word, rest) in instructions(&dockerfile) {
        match word.as_str() {
            "FROM" => {
                stage = rest.rsplit(' ').next().unwrap_or_default().to_owned();
                if !rest.contains(" AS ") {
                    stage = "final".to_owned();
                }
            }
            "ARG" if stage == "build" => {
                let (name, default) = rest.split_once('=').unwrap_or((&rest, ""));
                let given = args.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
                build_args.insert(name.to_owned(), given.unwrap_or(default).to_owned());
            }
            "WORKDIR" if stage == "build" => {
                workdir = workdir.join(&rest);
                std::fs::create_dir_all(in_image(&workdir)).expect("create WORKDIR");
            }
            "COPY" if stage == "build" => {
                let parts: Vec<&str> = rest.split_whitespace().collect();
                let (context, source, dest) = match parts.as_slice() {
                    [from, source, dest] => {
                        let name = from.strip_prefix("--from=").expect("COPY --from=<context>");
                        (&named[name], *source, *dest)
                    }
                    [source, dest] => (&main, *source, *dest),
                    other => panic!("unexpected COPY {other:?}"),
                };
                context.copy(source, &in_image(&workdir.join(dest)));
            }
            "RUN" if stage == "build" => {
                let status = Command::new("sh")
                    .arg("-c")
                    .arg(&rest)
                    .current_dir(in_image(&workdir))
                    .envs(&build_args)
                    .env("CARGO_TARGET_DIR", target_dir())
                    .env("CARGO_NET_OFFLINE", "true")
                    .status()
                    .expect("run sh");
                assert!(status.success(), "RUN {rest} failed: {status}");
            }
            "COPY" if stage == "final" && rest.starts_with("--from=build ") => {
                let source = rest.split_whitespace().nth(1).expect("a source");
                let built = in_image(Path::new(source));
                assert!(built.is_file(), "the build stage made no {source}");
                outputs.push(built);
            }
            "COPY" if stage == "final" => {
                let source = rest.split_whitespace().next().expect("a source");
                assert!(
                    project.join(source).exists(),
                    "{source} is in the build context"
                );
            }
            _ => {}
        }
    }
    outputs
}

/// Named build contexts and build arguments of a `docker build`.
pub(crate) type DockerBuild = (Vec<(String, PathBuf)>, Vec<(String, String)>);

/// The `docker build` command the project's Dockerfile documents in its first lines.
pub(crate) fn documented_command(project: &Path) -> String {
    let dockerfile =
        std::fs::read_to_string(project.join("deploy/Dockerfile")).expect("Dockerfile");
    dockerfile
        .lines()
        .find_map(|l| {
            l.strip_prefix('#')
                .map(str::trim)
                .filter(|l| l.starts_with("docker build "))
        })
        .expect("the Dockerfile documents its docker build command")
        .to_owned()
}

/// The [`documented_command`]'s `--build-context name=path` (paths relative to the
/// project) and `--build-arg NAME=value` (values as sh expands them in the project's
/// folder).
pub(crate) fn documented_build(project: &Path) -> DockerBuild {
    let line = documented_command(project);
    // Split as sh does; the command's `$(...)` expands in the project's folder.
    let words = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "for w in {}; do printf '%s\\n' \"$w\"; done",
            line.trim_start_matches("docker build ")
        ))
        .current_dir(project)
        .output()
        .expect("run sh");
    let words: Vec<String> = String::from_utf8_lossy(&words.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    let (mut contexts, mut args) = (Vec::new(), Vec::new());
    for pair in words.windows(2) {
        let Some((name, value)) = pair[1].split_once('=') else {
            continue;
        };
        match pair[0].as_str() {
            "--build-context" => contexts.push((name.to_owned(), project.join(value))),
            "--build-arg" => args.push((name.to_owned(), value.to_owned())),
            _ => {}
        }
    }
    (contexts, args)
}

/// Runs `job` of the project's CI workflow in `workspace` (standing for
/// `$GITHUB_WORKSPACE`): each `actions/checkout` step must find its checkout there
/// already (the project, or weapp for one naming a `repository`), and each `run` step
/// runs in its `working-directory`. Returns the checkout paths.
pub(crate) fn run_ci_job(project: &Path, job: &str, workspace: &Path, weapp: &Path) -> Vec<String> {
    let workflow =
        std::fs::read_to_string(project.join(".github/workflows/ci.yml")).expect("workflow");
    let docs = YamlLoader::load_from_str(&workflow).expect("valid YAML");
    let steps = docs[0]["jobs"][job]["steps"].as_vec().expect("steps");
    let mut checkouts = Vec::new();
    for step in steps {
        if step["uses"]
            .as_str()
            .is_some_and(|u| u.starts_with("actions/checkout"))
        {
            let path = step["with"]["path"].as_str().unwrap_or(".").to_owned();
            let expected = if step["with"]["repository"].is_badvalue() {
                project
            } else {
                weapp
            };
            let found = workspace.join(&path);
            assert_eq!(
                found.canonicalize().ok(),
                expected.canonicalize().ok(),
                "checkout into {path}"
            );
            checkouts.push(path);
        } else if let Some(run) = step["run"].as_str() {
            if run.starts_with("docker ") || run.starts_with("kubectl ") {
                continue;
            }
            let dir = step["working-directory"].as_str().unwrap_or(".");
            let output = Command::new("sh")
                .arg("-c")
                .arg(run)
                .current_dir(workspace.join(dir))
                .env("CARGO_TARGET_DIR", target_dir())
                .env("CARGO_NET_OFFLINE", "true")
                .output()
                .expect("run sh");
            assert!(
                output.status.success(),
                "{run} in {dir} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    checkouts
}

#[test]
fn dockerignore_patterns_match_as_docker_matches_them() {
    let matches = |pattern: &str, path: &str| {
        let pattern: Vec<&str> = pattern.trim_start_matches('/').split('/').collect();
        let path: Vec<&str> = path.split('/').collect();
        ignored_by(&pattern, &path)
    };
    assert!(matches("/target", "target"));
    assert!(matches("/target", "target/debug/app"));
    assert!(!matches("/target", "src/target"));
    assert!(matches("*.db", "shop.db"));
    assert!(!matches("*.db", "data/shop.db"), "a root-level pattern");
    assert!(matches("**/*.db", "data/shop.db"));
    assert!(matches("**/data", "example-app/data/keys"));
    assert!(matches("*.db-*", "shop.db-wal"));
    assert!(!matches("*.db-*", "shop.db"));
    assert_eq!(clean("/build/app/../weapp"), PathBuf::from("build/weapp"));
    assert_eq!(clean("/build/app/../../../x"), PathBuf::from("x"));
}
