//! A PostgreSQL primary with a streaming replica for the read-replica tests, on
//! 127.0.0.1:5442 and 5443, made from the machine's PostgreSQL binaries (`initdb`,
//! `pg_basebackup -R`) in the temp dir and started when absent, one process at a
//! time. The machine's own server is left alone: its `pg_hba.conf` refuses
//! replication connections.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::wait_until;

/// The primary's port.
pub(super) const PRIMARY_PORT: u16 = 5442;
/// The replica's port.
pub(super) const REPLICA_PORT: u16 = 5443;

/// Where the pair keeps its data, sockets, logs and locks.
pub(super) fn home() -> PathBuf {
    std::env::temp_dir().join("weapp-pg-replica")
}

/// The folder of `initdb`, `pg_ctl` and `pg_basebackup`: the newest installed
/// PostgreSQL's.
pub(super) fn bin_dir() -> Result<PathBuf, String> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("no PostgreSQL binaries in /usr/lib/postgresql: {e}"))?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("pg_basebackup").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| "no PostgreSQL with pg_basebackup in /usr/lib/postgresql".to_owned())
}

/// Runs a PostgreSQL tool as the `postgres` user (the server refuses to run as
/// root), or as ourselves when we are not root.
pub(super) fn run_as_postgres(program: &Path, args: &[&str]) -> Result<String, String> {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let mut command = if is_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    let output = command
        .args(args)
        .output()
        .map_err(|e| format!("{}: {e}", program.display()))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "{} {}: {}{}",
            program.display(),
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

pub(super) fn answers(port: u16) -> bool {
    Command::new("pg_isready")
        .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `sql` in the `postgres` database of the server on `port`; its output, or
/// `None` if it failed.
pub(super) fn query(port: u16, sql: &str) -> Option<String> {
    let output = Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
        .args(["-d", "postgres", "-tAc", sql])
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn streaming() -> bool {
    query(REPLICA_PORT, "SELECT status FROM pg_stat_wal_receiver").as_deref() == Some("streaming")
}

fn start(bin: &Path, data: &Path, port: u16) -> Result<(), String> {
    let data = data.to_string_lossy();
    let log = format!("{data}.log");
    let options = format!(
        "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} \
         -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
        home().display()
    );
    run_as_postgres(
        &bin.join("pg_ctl"),
        &["-D", &data, "-l", &log, "-o", &options, "-w", "start"],
    )
    .map(|_| ())
}

/// Starts the pair unless both answer and the replica streams; an error says what
/// failed.
pub(super) fn ensure() -> Result<(), String> {
    if answers(PRIMARY_PORT) && answers(REPLICA_PORT) && streaming() {
        return Ok(());
    }
    let home = home();
    std::fs::create_dir_all(&home).map_err(|e| format!("{}: {e}", home.display()))?;
    let lock = std::fs::File::create(home.join("start.lock")).map_err(|e| e.to_string())?;
    lock.lock().map_err(|e| e.to_string())?;
    if answers(PRIMARY_PORT) && answers(REPLICA_PORT) && streaming() {
        return Ok(());
    }
    let bin = bin_dir()?;
    // The server writes its sockets here, as the postgres user.
    Command::new("chown")
        .args(["postgres:postgres", &home.to_string_lossy()])
        .status()
        .map_err(|e| format!("chown {}: {e}", home.display()))?;
    let primary = home.join("primary");
    let replica = home.join("replica");
    if !answers(PRIMARY_PORT) {
        if !primary.join("PG_VERSION").exists() {
            let _ = std::fs::remove_dir_all(&primary);
            // Trust on loopback, replication connections included (initdb's default
            // pg_hba.conf with --auth=trust).
            run_as_postgres(
                &bin.join("initdb"),
                &[
                    "-D",
                    &primary.to_string_lossy(),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--no-sync",
                ],
            )?;
        }
        start(&bin, &primary, PRIMARY_PORT)?;
    }
    if !answers(REPLICA_PORT) {
        if !replica.join("standby.signal").exists() {
            let _ = std::fs::remove_dir_all(&replica);
            run_as_postgres(
                &bin.join("pg_basebackup"),
                &[
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &PRIMARY_PORT.to_string(),
                    "-U",
                    "postgres",
                    "-D",
                    &replica.to_string_lossy(),
                    "-R",
                    "-X",
                    "stream",
                    "--no-sync",
                ],
            )?;
        }
        start(&bin, &replica, REPLICA_PORT)?;
    }
    wait_until(
        "the replica streamed from the primary",
        Duration::from_secs(30),
        streaming,
    )
}
