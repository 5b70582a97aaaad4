//! An app spawned on a free port for a test: [`TestAppBuilder`] and [`TestApp`].

use crate::config::ConfigLoader;
use crate::db::Backend;
use crate::plugin::Plugin;
use crate::{App, AppContext};

use super::database::TestDatabase;
use super::redis::{check_redis, unique_redis_prefix};
use super::services::redis_url;

/// Builds a [`TestApp`]: SQLite and the in-memory store unless told otherwise.
pub struct TestAppBuilder {
    loader: ConfigLoader,
    backend: Backend,
    database_url: Option<String>,
    redis: bool,
    plugins: Vec<&'static dyn Plugin>,
    custom_jwt_keys: bool,
    custom_crypto_keys: bool,
}

impl TestAppBuilder {
    /// Uses this database URL as is, creating no database (e.g. a closed port to test
    /// an outage).
    pub fn database_url(mut self, url: &str) -> Self {
        self.database_url = Some(url.to_owned());
        self
    }

    /// Uses a fresh database on `backend`.
    pub fn database(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    /// Uses the test Redis (with a unique prefix) instead of the in-memory store.
    pub fn redis(mut self) -> Self {
        self.redis = true;
        self
    }

    /// A second instance of `other`'s app: the same database and Redis (and key
    /// prefix), as instances behind one load balancer share them.
    pub fn beside(mut self, other: &TestApp) -> Self {
        let config = other.ctx.config();
        let database = config
            .get::<crate::db::DatabaseConfig>()
            .expect("the other app's database config");
        self.database_url = Some(database.url.expose().to_owned());
        let redis = config
            .get::<crate::kv::RedisConfig>()
            .expect("the other app's Redis config");
        if let Some(url) = &redis.url {
            self.loader = self
                .loader
                .set("redis.url", url.expose())
                .set("redis.key_prefix", redis.key_prefix.as_str());
        }
        self
    }

    /// Sets one configuration value, e.g. `.set("server.body_limit_bytes", 1024)`.
    pub fn set(mut self, key: &str, value: impl serde::Serialize) -> Self {
        self.custom_jwt_keys |= key.starts_with("auth.jwt.keys");
        self.custom_crypto_keys |= key.starts_with("crypto.keys");
        self.loader = self.loader.set(key, value);
        self
    }

    /// Adds a plugin besides the registered ones.
    pub fn plugin(mut self, plugin: &'static dyn Plugin) -> Self {
        self.plugins.push(plugin);
        self
    }

    /// Starts the app on 127.0.0.1 with a free port; panics if it cannot start.
    pub async fn spawn(self) -> TestApp {
        self.try_spawn()
            .await
            .unwrap_or_else(|e| panic!("test app failed to start: {e}"))
    }

    /// Starts the app, returning the start-up error instead of panicking.
    pub async fn try_spawn(self) -> crate::Result<TestApp> {
        let db = match self.database_url {
            Some(_) => None,
            None => Some(TestDatabase::create(self.backend).await),
        };
        let url = match (&db, &self.database_url) {
            (Some(db), _) => db.url().to_owned(),
            (None, url) => url.clone().unwrap_or_default(),
        };
        let mut loader = self.loader;
        if !self.custom_crypto_keys {
            // This process's field keys, unless the test brings its own (or none).
            let (field_key, blind_key) = test_crypto_keys();
            loader = loader
                .set("crypto.keys.1", field_key)
                .set("crypto.blind_index_key", blind_key);
        }
        if !self.custom_jwt_keys {
            // An HS256 test key, unless the test brings its own key set.
            loader = loader.set("auth.jwt.keys.test", test_crypto_keys().0.repeat(2));
        }
        if self.redis {
            check_redis().await;
            loader = loader
                .set("redis.url", redis_url())
                .set("redis.key_prefix", unique_redis_prefix());
        }
        let config = loader
            .set("server.host", "127.0.0.1")
            .set("server.port", 0)
            .set("server.workers", 1)
            .set("database.url", url)
            .load()?;
        let mut app = App::new(config);
        for plugin in self.plugins {
            app = app.add_plugin(plugin);
        }

        let server = app.build().await?;
        let address = format!("http://{}", server.addr());
        let ctx = server.context().clone();
        let handle = server.handle();
        let join = tokio::spawn(server.run_until_stopped());
        Ok(TestApp {
            address,
            ctx,
            handle,
            join,
            client: reqwest::Client::new(),
            _db: db,
        })
    }
}

/// An app serving on a free local port, with its own database.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// The app's shared context.
    pub ctx: AppContext,
    /// An HTTP client for requests to the app.
    pub client: reqwest::Client,
    handle: actix_web::dev::ServerHandle,
    join: tokio::task::JoinHandle<crate::Result<()>>,
    _db: Option<TestDatabase>,
}

impl TestApp {
    /// A builder with an isolated configuration (no files, no process variables), the
    /// embedded sandbox, no rate limits (set `guard.rate_limits` to test them), and
    /// this process's random field-encryption and JWT keys ([`test_crypto_keys`])
    /// unless the test sets `crypto.keys` / `auth.jwt.keys`.
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            // No default rate limits: tests log in and order in bursts; the
            // guard's own tests set the rules they exercise.
            loader: ConfigLoader::isolated()
                .set("guard.rate_limits", Vec::<()>::new())
                .set("wechat.sandbox", true)
                .set("wechat.appid", SANDBOX_APPID)
                .set("wechat.secret", SANDBOX_SECRET),
            backend: Backend::Sqlite,
            database_url: None,
            redis: false,
            custom_jwt_keys: false,
            custom_crypto_keys: false,
            plugins: Vec::new(),
        }
    }

    /// Full URL of `path` on this app.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Stops the server gracefully (as SIGTERM does) and waits for shutdown to finish,
    /// background tasks included.
    pub async fn stop(self) -> crate::Result<()> {
        self.ctx
            .get_or_insert_with(crate::shutdown::Stopping::default)
            .begin();
        self.handle.stop(true).await;
        self.join
            .await
            .map_err(|e| crate::Error::internal(e.to_string()))?
    }

    /// Simulates `wx.login` in the embedded sandbox: `(code, openid, session_key)`.
    pub async fn sandbox_login(&self, openid: Option<&str>) -> (String, String, String) {
        let body = match openid {
            Some(openid) => serde_json::json!({ "openid": openid }),
            None => serde_json::json!({}),
        };
        let answer = self.sandbox_post("/__sandbox/login", body).await;
        let field = |name: &str| answer[name].as_str().unwrap_or_default().to_owned();
        (field("code"), field("openid"), field("session_key"))
    }

    /// Logs a user in through the sandbox and `/api/auth/login`:
    /// `(access_token, user_id)`. Panics if login fails.
    pub async fn login(&self, openid: &str) -> (String, i64) {
        self.login_with(serde_json::json!({ "openid": openid }))
            .await
    }

    /// Logs in the user a sandbox fixture describes (`{"openid", "phone", …}`, as
    /// `POST /__sandbox/login` takes it): `(access_token, user_id)`. Panics if login
    /// fails.
    pub async fn login_with(&self, fixture: serde_json::Value) -> (String, i64) {
        let code = self.sandbox_post("/__sandbox/login", fixture).await["code"].clone();
        let response = self
            .client
            .post(self.url("/api/auth/login"))
            .json(&serde_json::json!({ "code": code }))
            .send()
            .await
            .expect("app reachable");
        let status = response.status();
        let body: serde_json::Value = response.json().await.expect("login answer");
        assert_eq!(status, 200, "login failed: {body}");
        let token = body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned();
        (token, body["user_id"].as_i64().expect("user_id"))
    }

    /// POSTs JSON to a sandbox control endpoint and returns its answer.
    pub async fn sandbox_post(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        self.client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("sandbox reachable")
            .json()
            .await
            .expect("sandbox answer")
    }

    /// Calls per WeChat endpoint the embedded sandbox has seen.
    pub async fn sandbox_stats(&self) -> std::collections::BTreeMap<String, u64> {
        self.client
            .get(self.url("/__sandbox/stats"))
            .send()
            .await
            .expect("sandbox reachable")
            .json()
            .await
            .expect("sandbox stats")
    }

    /// Runs one SQL query on the app's database that returns a single BIGINT column
    /// named `n` (e.g. `SELECT COUNT(*) AS n FROM orders`); panics naming the query
    /// if it fails.
    pub async fn count(&self, sql: &str) -> i64 {
        use diesel_async::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.ctx.db().conn().await.expect("a database connection");
        let rows: Vec<Count> = crate::with_conn!(conn, |c| diesel::sql_query(sql).load(c).await)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows.into_iter()
            .next()
            .map(|r| r.n)
            .unwrap_or_else(|| panic!("{sql}: no row"))
    }

    /// Runs one SQL statement on the app's database (e.g. to put a row in a state the
    /// API refuses to create); returns the rows it changed, panics naming it if it fails.
    pub async fn execute(&self, sql: &str) -> usize {
        use diesel_async::RunQueryDsl;
        let mut conn = self.ctx.db().conn().await.expect("a database connection");
        crate::with_conn!(conn, |c| diesel::sql_query(sql).execute(c).await)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Runs one SQL query on the app's database that returns a single TEXT column
    /// named `t` (e.g. `SELECT details AS t FROM audit_log`); panics naming the query
    /// if it fails.
    pub async fn texts(&self, sql: &str) -> Vec<String> {
        use diesel_async::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Text {
            #[diesel(sql_type = diesel::sql_types::Text)]
            t: String,
        }
        let mut conn = self.ctx.db().conn().await.expect("a database connection");
        let rows: Vec<Text> = crate::with_conn!(conn, |c| diesel::sql_query(sql).load(c).await)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows.into_iter().map(|r| r.t).collect()
    }

    /// A handle to stop the server from elsewhere.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.handle.clone()
    }
}

impl TestApp {
    /// The app's `GET /metrics` page (metrics served without a token).
    pub async fn metrics(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("app reachable")
            .text()
            .await
            .expect("metrics text")
    }
}

/// The value of the first sample line of a Prometheus text page (`GET /metrics`)
/// that starts with `prefix`: a family name, with its labels if they matter, e.g.
/// `http_requests_total{method="GET"` for `http_requests_total{method="GET",...} 3`.
pub fn metric_sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// AppID the test apps use with their embedded sandbox.
pub const SANDBOX_APPID: &str = "wx00000000sandbox";
/// AppSecret the test apps use with their embedded sandbox (a fake, for tests only).
pub const SANDBOX_SECRET: &str = "sandbox-test-secret";

/// Random base64 keys (a 16-byte SM4 field key, a 32-byte blind-index key), the same
/// for every app in this process, so apps spawned on one database read each other's
/// rows; a test that wants its own keys sets `crypto.*` with [`TestAppBuilder::set`].
pub fn test_crypto_keys() -> (&'static str, &'static str) {
    use base64::Engine;
    static KEYS: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    let (field, blind) = KEYS.get_or_init(|| {
        let mut field = [0u8; 16];
        let mut blind = [0u8; 32];
        getrandom::fill(&mut field).expect("random source");
        getrandom::fill(&mut blind).expect("random source");
        let b64 = base64::engine::general_purpose::STANDARD;
        (b64.encode(field), b64.encode(blind))
    });
    (field, blind)
}

/// Spawns the app with default test settings; see [`TestApp::builder`].
pub async fn spawn_app() -> TestApp {
    TestApp::builder().spawn().await
}
