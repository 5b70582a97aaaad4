//! A PostgreSQL server and a Redis server of a test's own, on free ports, that the
//! test may crash and start again: for crash tests, which cannot stop the machine's
//! shared servers under the other tests' feet. Each lives in a temp folder removed
//! when it is dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::pg_replica::{answers, bin_dir, run_as_postgres};
use super::wait_until;

/// A free port on 127.0.0.1 (free when asked).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn unique_dir(kind: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    std::env::temp_dir().join(format!("weapp-{kind}-{}-{nanos}", std::process::id()))
}

/// A PostgreSQL server of the test's own (the machine's binaries, `initdb`), with a
/// database `weapp`. [`crash`](Self::crash) stops it as a power cut would stop the
/// server process (`pg_ctl -m immediate`: no checkpoint, recovery from the WAL at
/// the next start).
pub struct PrivatePostgres {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
}

impl PrivatePostgres {
    /// Makes and starts the server; panics with the tools' output if it cannot.
    pub fn start() -> PrivatePostgres {
        let bin = bin_dir().unwrap_or_else(|e| panic!("{e}"));
        let dir = unique_dir("pg");
        std::fs::create_dir_all(&dir).expect("a temp dir");
        // The server runs as the postgres user when we are root; it writes here.
        let _ = Command::new("chown")
            .args(["postgres:postgres", &dir.to_string_lossy()])
            .status();
        let server = PrivatePostgres {
            port: free_port(),
            bin,
            dir,
        };
        run_as_postgres(
            &server.bin.join("initdb"),
            &[
                "-D",
                &server.data(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        server.start_again();
        let created = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &server.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-d", "postgres", "-qc", "CREATE DATABASE weapp"])
            .status();
        assert!(created.is_ok_and(|s| s.success()), "database weapp created");
        server
    }

    fn data(&self) -> String {
        self.dir.join("data").to_string_lossy().into_owned()
    }

    /// `postgres://postgres@127.0.0.1:<port>/weapp`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/weapp", self.port)
    }

    /// Stops the server at once, as a crash would; committed work survives (the WAL
    /// reached the operating system), the rest is rolled back at the next start.
    pub fn crash(&self) {
        let stopped = run_as_postgres(
            &self.bin.join("pg_ctl"),
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
        stopped.unwrap_or_else(|e| panic!("{e}"));
    }

    /// Starts the server (again) and waits until it answers.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off \
             -c max_connections=200",
            self.port,
            self.dir.display()
        );
        let log = format!("{}.log", self.data());
        run_as_postgres(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-o",
                &options,
                "-w",
                "start",
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let port = self.port;
        wait_until(
            "the private PostgreSQL answers",
            Duration::from_secs(30),
            || answers(port),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = run_as_postgres(
            &self.bin.join("pg_ctl"),
            &["-D", &self.data(), "-m", "immediate", "stop"],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis server of the test's own that keeps every write in its append-only file
/// (`appendonly yes`, `appendfsync always`), as production Redis for flash sales
/// should. [`crash`](Self::crash) kills it (SIGKILL); [`start_again`](Self::start_again)
/// starts it on the same port and file, so it comes back with what it acknowledged.
pub struct PrivateRedis {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Starts the server; panics if `redis-server` cannot run.
    pub fn start() -> PrivateRedis {
        let dir = unique_dir("redis");
        std::fs::create_dir_all(&dir).expect("a temp dir");
        let mut server = PrivateRedis {
            dir,
            port: free_port(),
            child: None,
        };
        server.start_again();
        server
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL): no shutdown, no final save.
    pub fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server (again) from its append-only file; waits until it answers.
    pub fn start_again(&mut self) {
        let log = std::fs::File::create(self.dir.join("redis.log")).expect("a log file");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--dir", &self.dir.to_string_lossy()])
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("redis-server runs");
        self.child = Some(child);
        let port = self.port.to_string();
        wait_until("the private Redis answers", Duration::from_secs(30), || {
            Command::new("redis-cli")
                .args(["-p", &port, "ping"])
                .output()
                .is_ok_and(|o| o.stdout.starts_with(b"PONG"))
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.crash();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
