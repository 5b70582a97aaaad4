//! The local Redis Cluster tests run against: three masters on 127.0.0.1:7000-7002,
//! started from the machine's `redis-server` when absent (as `tests/setup.sh`
//! does), one process at a time.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::wait_until;

/// The cluster's nodes.
const PORTS: [u16; 3] = [7000, 7001, 7002];

fn redis_cli(port: u16, args: &[&str]) -> Option<String> {
    let output = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

fn answers(port: u16) -> bool {
    redis_cli(port, &["ping"]).is_some_and(|out| out.contains("PONG"))
}

fn cluster_info(port: u16, field: &str) -> Option<String> {
    let info = redis_cli(port, &["cluster", "info"])?;
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .map(|value| value.trim().to_owned())
}

fn healthy() -> bool {
    PORTS
        .iter()
        .all(|port| cluster_info(*port, "cluster_state").as_deref() == Some("ok"))
}

/// Starts the cluster unless it is up; an error says what failed.
pub(super) fn ensure() -> Result<(), String> {
    if healthy() {
        return Ok(());
    }
    let dir = std::env::temp_dir().join("weapp-redis-cluster");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // Test processes run in parallel: one of them starts the cluster.
    let lock = std::fs::File::create(dir.join("lock")).map_err(|e| e.to_string())?;
    lock.lock().map_err(|e| e.to_string())?;
    if healthy() {
        return Ok(());
    }
    for port in PORTS {
        if !answers(port) {
            start_node(&dir.join(port.to_string()), port)?;
        }
    }
    for port in PORTS {
        wait_until(
            &format!("Redis on port {port} answered"),
            Duration::from_secs(10),
            || answers(port),
        )?;
    }
    let assigned = |port| cluster_info(port, "cluster_slots_assigned").unwrap_or_default();
    if PORTS.iter().any(|port| assigned(*port) != "0") {
        // Half made (an earlier start was interrupted): start over.
        for port in PORTS {
            redis_cli(port, &["flushall"]);
            redis_cli(port, &["cluster", "reset", "hard"]);
        }
    }
    let nodes: Vec<String> = PORTS.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let created = Command::new("redis-cli")
        .arg("--cluster")
        .arg("create")
        .args(&nodes)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .map_err(|e| format!("redis-cli --cluster create: {e}"))?;
    if !created.status.success() {
        return Err(format!(
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&created.stdout)
        ));
    }
    wait_until("the cluster was ready", Duration::from_secs(30), healthy)
}

fn start_node(dir: &PathBuf, port: u16) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let status = Command::new("redis-server")
        .args(["--daemonize", "yes", "--bind", "127.0.0.1"])
        .args(["--port", &port.to_string()])
        .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "5000"])
        .args(["--cluster-config-file", "nodes.conf"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .arg("--logfile")
        .arg(dir.join("redis.log"))
        .status()
        .map_err(|e| format!("redis-server (is Redis installed?): {e}"))?;
    match status.success() {
        true => Ok(()),
        false => Err(format!(
            "redis-server on port {port} did not start: {status}"
        )),
    }
}
