//! `TestCluster`: several processes of the example shop on free ports, sharing one
//! PostgreSQL database and one Redis prefix, all calling WeChat (and WeChat Pay)
//! through one sandbox host, so that what crosses instances is tested as it runs:
//! separate processes, killed with SIGKILL or stopped with SIGTERM.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use weapp::db::{Backend, DatabaseConfig, Db};
use weapp::testing::{TestDatabase, ensure_redis_cluster, redis_cluster_url, redis_url};

/// The shop binary built with this package (`src/bin/shop_node.rs`).
const NODE_BINARY: &str = env!("CARGO_BIN_EXE_shop-node");

/// The admin token every node accepts (`X-Admin-Token`).
pub(crate) const ADMIN_TOKEN: &str = "cluster-admin-token-0123456789abcdef";

/// Configures a [`TestCluster`].
pub(crate) struct TestClusterBuilder {
    nodes: usize,
    toml: String,
    redis_cluster: bool,
    database_url: Option<String>,
    redis_url: Option<String>,
}

impl TestClusterBuilder {
    /// Adds TOML to every node's `config/default.toml`, e.g.
    /// `"[order.outbox]\nlease_ms = 1000"`.
    pub(crate) fn toml(mut self, toml: &str) -> Self {
        self.toml.push('\n');
        self.toml.push_str(toml);
        self.toml.push('\n');
        self
    }

    /// Shares the local Redis Cluster (started if absent) instead of one Redis.
    pub(crate) fn redis_cluster(mut self) -> Self {
        self.redis_cluster = true;
        self
    }

    /// Uses this PostgreSQL database (e.g. a [`weapp::testing::PrivatePostgres`]'s)
    /// instead of a fresh one on the machine's server.
    pub(crate) fn database_url(mut self, url: String) -> Self {
        self.database_url = Some(url);
        self
    }

    /// Uses this Redis (e.g. a [`weapp::testing::PrivateRedis`]'s) instead of the
    /// machine's.
    pub(crate) fn redis_url(mut self, url: String) -> Self {
        self.redis_url = Some(url);
        self
    }

    /// Starts the sandbox host, then the first node (it migrates and seeds the
    /// catalogue), then the others; panics with the node's log if one does not
    /// become ready.
    pub(crate) async fn start(self) -> TestCluster {
        if self.redis_cluster {
            ensure_redis_cluster().await;
        }
        let db = match self.database_url {
            Some(_) => None,
            None => Some(TestDatabase::create(Backend::Postgres).await),
        };
        let db_url = match (&db, self.database_url) {
            (Some(db), _) => db.url().to_owned(),
            (None, url) => url.unwrap_or_default(),
        };
        let dir = std::env::temp_dir().join(format!("weapp-cluster-{}", uuid_like()));
        // The nodes' folder holds their config/; the sandbox host's is beside it, as
        // the configuration is looked for in parent folders too.
        let nodes_dir = dir.join("nodes");
        std::fs::create_dir_all(nodes_dir.join("config")).expect("a temp dir");
        let jwt_key = format!("cluster-jwt-key-{}", uuid_like());
        let key_prefix = uuid_like();
        let shared = format!(
            r#"
[auth.jwt.keys]
cluster = "{jwt_key}"

[auth.admin_tokens]
ops = "{ADMIN_TOKEN}"

[redis]
url = "{redis}"
cluster = {cluster}
key_prefix = "weapp_cluster:{prefix}:"

[database]
url = "{db_url}"

[observe]
log_format = "pretty"
{extra}
"#,
            redis = match (self.redis_url, self.redis_cluster) {
                (Some(url), _) => url,
                (None, true) => redis_cluster_url(),
                (None, false) => redis_url(),
            },
            cluster = self.redis_cluster,
            prefix = key_prefix,
            db_url = db_url,
            extra = self.toml,
        );
        std::fs::write(nodes_dir.join("config/default.toml"), shared).expect("config written");
        // The sandbox host: the shop with its defaults (SQLite, in memory, the
        // embedded WeChat and WeChat Pay sandboxes) in a folder of its own.
        let sandbox_dir = dir.join("sandbox");
        std::fs::create_dir_all(&sandbox_dir).expect("a temp dir");
        let sandbox = Node::spawn(&sandbox_dir, "sandbox", free_port(), Vec::new()).await;
        let mut cluster = TestCluster {
            nodes: Vec::new(),
            sandbox,
            database: Db::connect(&DatabaseConfig {
                url: weapp::config::ConnectionUrl::new(&db_url),
                ..Default::default()
            })
            .expect("a pool"),
            _db: db,
            dir,
            key_prefix: format!("weapp_cluster:{key_prefix}:"),
            client: reqwest::Client::new(),
        };
        for i in 0..self.nodes {
            let node = cluster.spawn_node(i).await;
            cluster.nodes.push(Some(node));
        }
        cluster
    }
}

/// App instances sharing PostgreSQL and Redis; see the [module docs](self).
pub(crate) struct TestCluster {
    nodes: Vec<Option<Node>>,
    sandbox: Node,
    database: Db,
    _db: Option<TestDatabase>,
    dir: PathBuf,
    key_prefix: String,
    /// An HTTP client for requests to the nodes.
    pub(crate) client: reqwest::Client,
}

struct Node {
    child: Child,
    port: u16,
    log: PathBuf,
}

/// A free port on 127.0.0.1 (free when asked; the node binds it right after).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{}{:x}", std::process::id(), nanos)
}

/// The shop binary, without this process's `WEAPP*` and `RUST_LOG` variables: a
/// node reads only the cluster's configuration.
fn node_command() -> Command {
    let mut command = Command::new(NODE_BINARY);
    for (key, _) in std::env::vars() {
        if key.starts_with("WEAPP") || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    command
}

impl Node {
    async fn spawn(
        dir: &std::path::Path,
        name: &str,
        port: u16,
        env: Vec<(String, String)>,
    ) -> Node {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("a log file");
        let mut command = node_command();
        command
            .current_dir(dir)
            .env("WEAPP__SERVER__HOST", "127.0.0.1")
            .env("WEAPP__SERVER__PORT", port.to_string())
            .env("WEAPP__SERVER__WORKERS", "1")
            .envs(env)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log handle"))
            .stderr(out);
        let child = command.spawn().expect("the shop-node binary starts");
        let mut node = Node { child, port, log };
        node.wait_ready(name).await;
        node
    }

    fn address(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn wait_ready(&mut self, name: &str) {
        let client = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                panic!("node {name} exited at start ({status}); its log:\n{log}");
            }
            let ready = client
                .get(format!("{}/readyz", self.address()))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if ready {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        panic!("node {name} was not ready within 30 s; its log:\n{log}");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TestCluster {
    /// A builder: 3 nodes, no extra configuration.
    pub(crate) fn builder() -> TestClusterBuilder {
        TestClusterBuilder {
            nodes: 3,
            toml: String::new(),
            redis_cluster: false,
            database_url: None,
            redis_url: None,
        }
    }

    async fn spawn_node(&self, i: usize) -> Node {
        let sandbox = self.sandbox.address();
        let samples = [
            ("SERIAL_NO", weapp_pay::samples::MERCHANT_SERIAL),
            ("PRIVATE_KEY", weapp_pay::samples::MERCHANT_KEY_PEM),
            ("APIV3_KEY", weapp_pay::samples::APIV3_KEY),
            ("PUBLIC_KEY_ID", weapp_pay::samples::PUBLIC_KEY_ID),
            ("PUBLIC_KEY", weapp_pay::samples::PLATFORM_A_PUBLIC_KEY_PEM),
        ];
        let port = free_port();
        let notify_url = format!("http://127.0.0.1:{port}/api/pay/notify/shop");
        let mut env: Vec<(String, String)> = vec![
            ("WEAPP__WECHAT__SANDBOX".into(), "false".into()),
            ("WEAPP__PAY__MERCHANTS__SHOP__NOTIFY_URL".into(), notify_url),
            ("WEAPP__WECHAT__BASE_URL".into(), sandbox.clone()),
            ("WEAPP__PAY__BASE_URL".into(), sandbox),
            ("WEAPP__EVENTS__CONSUMER".into(), format!("node-{i}")),
        ];
        env.extend(samples.iter().map(|(key, value)| {
            (
                format!("WEAPP__PAY__MERCHANTS__SHOP__{key}"),
                (*value).to_owned(),
            )
        }));
        Node::spawn(&self.dir.join("nodes"), &format!("node-{i}"), port, env).await
    }

    fn node(&self, i: usize) -> &Node {
        self.nodes[i]
            .as_ref()
            .unwrap_or_else(|| panic!("node {i} was stopped"))
    }

    /// `http://127.0.0.1:<port of node i><path>`.
    pub(crate) fn url(&self, i: usize, path: &str) -> String {
        format!("{}{path}", self.node(i).address())
    }

    /// The sandbox host's `<address><path>` (`/__sandbox/…`).
    pub(crate) fn sandbox_url(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox.address())
    }

    /// The Redis key of the shared event stream (`events.stream` under the
    /// cluster's key prefix).
    pub(crate) fn events_stream(&self) -> String {
        format!("{}events", self.key_prefix)
    }

    /// Node `i`'s log so far.
    pub(crate) fn log(&self, i: usize) -> String {
        std::fs::read_to_string(&self.node(i).log).unwrap_or_default()
    }

    /// Kills node `i` with SIGKILL: no shutdown, no drain, its leases left behind.
    /// Its port refuses connections from then on.
    pub(crate) fn kill(&self, i: usize) {
        let pid = self.node(i).child.id().to_string();
        let sent = Command::new("kill").args(["-KILL", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "SIGKILL sent to node {i}");
    }

    /// Stops node `i` with SIGTERM and waits for it to exit (graceful drain);
    /// returns whether it exited successfully.
    pub(crate) async fn terminate(&mut self, i: usize) -> bool {
        let Some(mut node) = self.nodes[i].take() else {
            return false;
        };
        let pid = node.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "SIGTERM sent to node {i}");
        for _ in 0..300 {
            if let Ok(Some(status)) = node.child.try_wait() {
                return status.success();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("node {i} did not stop within 30 s of SIGTERM");
    }

    /// Starts node `i` again (after [`TestCluster::kill`] or
    /// [`TestCluster::terminate`]), on a new port.
    pub(crate) async fn restart(&mut self, i: usize) {
        let node = self.spawn_node(i).await;
        self.nodes[i] = Some(node);
    }

    /// Runs the shop binary's command line (`audit verify`, `migrate`…) with the
    /// nodes' configuration; returns whether it succeeded and what it printed.
    pub(crate) fn command(&self, args: &[&str]) -> (bool, String) {
        let mut command = node_command();
        let output = command
            .current_dir(self.dir.join("nodes"))
            .args(args)
            .output()
            .expect("the shop-node binary runs");
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        (output.status.success(), text)
    }

    /// Logs `openid` in through node `i` (the code from the sandbox host); returns
    /// the access token, the refresh token and the user id.
    pub(crate) async fn login(&self, i: usize, openid: &str) -> (String, String, i64) {
        let code: serde_json::Value = self
            .client
            .post(self.sandbox_url("/__sandbox/login"))
            .json(&serde_json::json!({ "openid": openid }))
            .send()
            .await
            .expect("sandbox reachable")
            .json()
            .await
            .expect("a code");
        let response = self
            .client
            .post(self.url(i, "/api/auth/login"))
            .json(&serde_json::json!({ "code": code["code"] }))
            .send()
            .await
            .expect("node reachable");
        let status = response.status();
        let body: serde_json::Value = response.json().await.expect("login answer");
        assert_eq!(status, 200, "login through node {i} failed: {body}");
        (
            body["access_token"]
                .as_str()
                .expect("access_token")
                .to_owned(),
            body["refresh_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            body["user_id"].as_i64().expect("user_id"),
        )
    }

    /// The sandbox host's call counters (`/__sandbox/stats`).
    pub(crate) async fn sandbox_stats(&self) -> serde_json::Value {
        self.client
            .get(self.sandbox_url("/__sandbox/stats"))
            .send()
            .await
            .expect("sandbox reachable")
            .json()
            .await
            .expect("stats")
    }

    /// The first column of the first row of `sql` (a `BIGINT` named `n`), run on
    /// the shared database.
    pub(crate) async fn count(&self, sql: &str) -> i64 {
        count_on(&self.database, sql).await
    }
}

/// The first column of the first row of `sql` (a `BIGINT` named `n`), run on `db`.
pub(crate) async fn count_on(db: &Db, sql: &str) -> i64 {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = db.conn().await.expect("a database connection");
    let rows: Vec<Count> = weapp::with_conn!(conn, |c| diesel::sql_query(sql).load(c).await)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.into_iter()
        .next()
        .map(|r| r.n)
        .unwrap_or_else(|| panic!("{sql}: no row"))
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        self.nodes.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
