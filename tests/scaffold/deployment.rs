//! The app template's deployment files: the Kubernetes manifests hold the settings
//! a production cluster needs, secrets only by reference; the Dockerfile builds in
//! stages and runs as a non-root user with a health check.

use yaml_rust2::{Yaml, YamlLoader};

use crate::generate::{Scratch, generate, read, repo_root};

/// A file of a project generated from the app template (named `shop`, database
/// PostgreSQL).
fn template_file(path: &str) -> String {
    let scratch = Scratch::new("deploy");
    let root = repo_root();
    let project = generate(
        "app",
        scratch.path(),
        "shop",
        &[
            ("database", "postgres"),
            ("weapp_source", root.to_str().expect("UTF-8 path")),
        ],
    );
    read(&project, path)
}

fn manifest(path: &str) -> Yaml {
    let mut docs = YamlLoader::load_from_str(&template_file(path)).expect("valid YAML");
    assert_eq!(docs.len(), 1, "{path}: one document");
    docs.remove(0)
}

#[test]
fn the_deployment_runs_non_root_read_only_with_probes_limits_and_secret_refs() {
    let deployment = manifest("deploy/k8s/deployment.yaml");
    assert_eq!(deployment["kind"].as_str(), Some("Deployment"));
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    let containers = pod["containers"].as_vec().expect("containers");
    assert_eq!(containers.len(), 1);
    let app = &containers[0];
    assert_eq!(
        app["securityContext"]["readOnlyRootFilesystem"].as_bool(),
        Some(true)
    );
    assert_eq!(
        app["securityContext"]["allowPrivilegeEscalation"].as_bool(),
        Some(false)
    );
    for kind in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(
                !app["resources"][kind][resource].is_badvalue(),
                "resources.{kind}.{resource} is set"
            );
        }
    }
    assert_eq!(
        app["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/healthz")
    );
    assert_eq!(
        app["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/readyz")
    );

    let env = app["env"].as_vec().expect("env");
    let by_name = |name: &str| {
        env.iter()
            .find(|e| e["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("{name} is set"))
    };
    for secret in [
        "WEAPP__WECHAT__SECRET",
        "WEAPP__AUTH__JWT__KEYS__K1",
        "WEAPP__CRYPTO__KEYS__1",
        "WEAPP__CRYPTO__BLIND_INDEX_KEY",
        "WEAPP__DATABASE__URL",
    ] {
        let entry = by_name(secret);
        assert!(entry["value"].is_badvalue(), "{secret} must not be inline");
        assert_eq!(
            entry["valueFrom"]["secretKeyRef"]["name"].as_str(),
            Some("shop-secrets"),
            "{secret} comes from the Secret"
        );
    }
    for entry in env {
        let name = entry["name"].as_str().unwrap_or_default();
        if ["SECRET", "KEY", "URL"]
            .iter()
            .any(|word| name.contains(word))
        {
            assert!(entry["value"].is_badvalue(), "{name} must not be inline");
        }
    }
}

/// A pod that migrates is not killed for it, and one that stops finishes its work:
/// a startup probe covers migrations, a preStop pause covers the endpoint's removal,
/// and the grace period outlasts the pause plus the app's own shutdown timeout.
#[test]
fn the_deployment_starts_and_stops_gracefully() {
    let deployment = manifest("deploy/k8s/deployment.yaml");
    let pod = &deployment["spec"]["template"]["spec"];
    let app = &pod["containers"][0];
    let startup = &app["startupProbe"];
    assert_eq!(startup["httpGet"]["path"].as_str(), Some("/healthz"));
    let window =
        startup["periodSeconds"].as_i64().unwrap() * startup["failureThreshold"].as_i64().unwrap();
    assert!(
        window >= 120,
        "migrations get at least two minutes: {window} s"
    );
    let pause = app["lifecycle"]["preStop"]["exec"]["command"]
        .as_vec()
        .expect("a preStop command");
    assert_eq!(pause[0].as_str(), Some("sleep"));
    let pause: i64 = pause[1].as_str().unwrap().parse().unwrap();
    let shutdown: i64 = app["env"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|e| e["name"].as_str() == Some("WEAPP__SERVER__SHUTDOWN_TIMEOUT_S"))
        .and_then(|e| e["value"].as_str())
        .expect("the shutdown timeout is stated")
        .parse()
        .unwrap();
    let grace = pod["terminationGracePeriodSeconds"]
        .as_i64()
        .expect("a grace period");
    assert!(
        grace > pause + shutdown,
        "grace {grace} s <= {pause} s + {shutdown} s"
    );
}

/// Several replicas that never all go at once: a rollout brings a new pod up before
/// an old one goes, a drain takes one pod at a time, and replicas spread over nodes.
#[test]
fn the_app_runs_replicated_and_disruptions_take_one_pod_at_a_time() {
    let deployment = manifest("deploy/k8s/deployment.yaml");
    let replicas = deployment["spec"]["replicas"].as_i64().expect("replicas");
    assert!(replicas >= 2, "{replicas} replica(s)");
    let rolling = &deployment["spec"]["strategy"]["rollingUpdate"];
    assert_eq!(rolling["maxUnavailable"].as_i64(), Some(0));
    assert!(rolling["maxSurge"].as_i64().unwrap_or(0) >= 1);
    let spread = &deployment["spec"]["template"]["spec"]["topologySpreadConstraints"][0];
    assert_eq!(
        spread["topologyKey"].as_str(),
        Some("kubernetes.io/hostname")
    );
    assert_eq!(
        spread["labelSelector"]["matchLabels"]["app"].as_str(),
        Some("shop")
    );

    let budget = manifest("deploy/k8s/pdb.yaml");
    assert_eq!(budget["kind"].as_str(), Some("PodDisruptionBudget"));
    assert_eq!(budget["apiVersion"].as_str(), Some("policy/v1"));
    assert_eq!(
        budget["spec"]["selector"]["matchLabels"]["app"].as_str(),
        deployment["spec"]["selector"]["matchLabels"]["app"].as_str(),
        "the budget covers the deployment's pods"
    );
    let unavailable = budget["spec"]["maxUnavailable"]
        .as_i64()
        .expect("maxUnavailable");
    assert!(
        (1..replicas).contains(&unavailable),
        "a drain leaves pods serving: {unavailable} of {replicas} may go"
    );
}

/// The build context leaves out build output and local state (the development
/// database and keys).
#[test]
fn the_build_context_leaves_out_target_and_local_data() {
    let ignore = template_file(".dockerignore");
    let lines: Vec<&str> = ignore.lines().map(str::trim).collect();
    for entry in ["/target", "/data", "/.git", ".env"] {
        assert!(
            lines.contains(&entry),
            "{entry} in .dockerignore:\n{ignore}"
        );
    }
}

#[test]
fn the_service_and_autoscaler_point_at_the_deployment() {
    let service = manifest("deploy/k8s/service.yaml");
    assert_eq!(service["kind"].as_str(), Some("Service"));
    assert_eq!(service["spec"]["selector"]["app"].as_str(), Some("shop"));
    let hpa = manifest("deploy/k8s/hpa.yaml");
    assert_eq!(hpa["kind"].as_str(), Some("HorizontalPodAutoscaler"));
    assert_eq!(
        hpa["spec"]["scaleTargetRef"]["kind"].as_str(),
        Some("Deployment")
    );
    assert_eq!(hpa["spec"]["scaleTargetRef"]["name"].as_str(), Some("shop"));
    let (min, max) = (
        hpa["spec"]["minReplicas"].as_i64().unwrap(),
        hpa["spec"]["maxReplicas"].as_i64().unwrap(),
    );
    assert!(min >= 2 && max > min);
}

#[test]
fn the_image_builds_in_stages_and_runs_unprivileged() {
    let dockerfile = template_file("deploy/Dockerfile");
    let froms = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .count();
    assert_eq!(froms, 2, "a build stage and a small runtime stage");
    let user = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER line");
    assert!(user.trim() != "root" && user.trim() != "0");
    assert!(dockerfile.contains("HEALTHCHECK") && dockerfile.contains("/healthz"));
}

#[test]
fn the_example_pipeline_tests_builds_and_rolls_out() {
    let workflow = template_file(".github/workflows/ci.yml");
    let docs = YamlLoader::load_from_str(&workflow).expect("valid YAML");
    let jobs = &docs[0]["jobs"];
    assert!(!jobs["test"].is_badvalue() && !jobs["deploy"].is_badvalue());
    assert_eq!(jobs["deploy"]["needs"].as_str(), Some("test"));
    assert!(workflow.contains("docker build") && workflow.contains("kubectl set image"));
}

/// The Kubernetes guide builds the image with the command the generated Dockerfile
/// documents (which `app_template` replays): the same Dockerfile, named build
/// context and commit argument.
#[test]
fn the_guide_builds_the_image_as_the_dockerfile_says() {
    let scratch = Scratch::new("guide-image");
    let project = generate("app", scratch.path(), "shop", &[]);
    let documented = crate::image::documented_command(&project);
    let guide = std::fs::read_to_string(repo_root().join("book/src/guides/kubernetes.md"))
        .expect("the guide")
        .replace("\\\n", " ");
    let shown = guide
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("docker build "))
        .expect("the guide shows docker build");
    let flags = |command: &str| -> Vec<String> {
        let words: Vec<&str> = command.split_whitespace().collect();
        words
            .windows(2)
            .filter(|w| ["-f", "--build-context", "--build-arg"].contains(&w[0]))
            .map(|w| format!("{} {}", w[0], w[1].split('=').next().unwrap_or_default()))
            .collect()
    };
    assert_eq!(
        flags(shown),
        flags(&documented),
        "{shown}\nvs\n{documented}"
    );
    // The default takes weapp from crates.io: nothing but the project goes in.
    assert!(!shown.contains("--build-context") && !documented.contains("--build-context"));
}
