//! Runs the real `example-app` binary, as a newcomer or an operator would.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_example-app"))
}

/// A scratch working directory with no config files, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "weapp-example-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn command(scratch: &Scratch) -> Command {
    let mut cmd = Command::new(binary());
    cmd.current_dir(&scratch.0)
        .env_remove("WEAPP_ENV")
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1");
    for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("WEAPP__")) {
        cmd.env_remove(name);
    }
    cmd
}

/// Starts `serve` on a free port with extra variables; returns the child and its address.
fn serve(scratch: &Scratch, vars: &[(&str, &str)]) -> (Child, String) {
    let child = command(scratch)
        .env("WEAPP__SERVER__PORT", "0")
        .envs(vars.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    wait_for_address(child, "listening on http://")
}

/// Reads the child's log until `marker` followed by an address appears.
fn wait_for_address(child: Child, marker: &str) -> (Child, String) {
    let (child, address, _) = wait_for_address_with_logs(child, marker);
    (child, address)
}

/// Everything the child printed on stdout so far.
type Logs = std::sync::Arc<std::sync::Mutex<String>>;

/// As [`wait_for_address`], also keeping every stdout line.
fn wait_for_address_with_logs(mut child: Child, marker: &str) -> (Child, String, Logs) {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let logs = Logs::default();
    let kept = logs.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("example-app: {line}");
            kept.lock().unwrap().push_str(&line);
            kept.lock().unwrap().push('\n');
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200))
            && let Some(at) = line.find(marker)
        {
            let address: String = line[at + marker.len() - "http://".len()..]
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '"')
                .collect();
            return (child, address, logs);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("example-app did not report its address within 30 s");
}

#[tokio::test]
async fn the_example_app_runs_on_the_embedded_default_and_stops_on_sigterm() {
    let scratch = Scratch::new();
    let (child, address) = serve(&scratch, &[]);
    assert!(
        scratch.0.join("data/example.db").exists(),
        "SQLite file under data/"
    );

    let health: serde_json::Value = reqwest::get(format!("{address}/healthz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let ready = reqwest::get(format!("{address}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);

    // The embedded WeChat sandbox answers on the app's own address.
    let login: serde_json::Value = reqwest::Client::new()
        .post(format!("{address}/__sandbox/login"))
        .body("{}")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session: serde_json::Value = reqwest::get(format!(
        "{address}/sns/jscode2session?appid=wx00000000example&secret=sandbox-only-secret&js_code={}&grant_type=authorization_code",
        login["code"].as_str().unwrap()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(session["openid"], login["openid"]);

    // The order plugin is linked and the fresh database got the demo catalogue.
    let products: serde_json::Value = reqwest::get(format!("{address}/api/products"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        products["items"].as_array().map(Vec::len),
        Some(3),
        "{products}"
    );

    terminate(child);
}

/// Sends SIGTERM and requires a clean exit within 15 s.
fn terminate(mut child: Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit after SIGTERM: {status}");
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("example-app ignored SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn with_database_and_redis_urls_it_uses_postgres_and_redis() {
    let scratch = Scratch::new();
    let db = weapp::testing::TestDatabase::create(weapp::db::Backend::Postgres).await;
    let prefix = format!("weapp_example_test_{}:", std::process::id());
    let redis_url = weapp::testing::redis_url();
    let (child, address) = serve(
        &scratch,
        &[
            ("WEAPP__DATABASE__URL", db.url()),
            ("WEAPP__REDIS__URL", &redis_url),
            ("WEAPP__REDIS__KEY_PREFIX", &prefix),
        ],
    );
    let ready = reqwest::get(format!("{address}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(ready["checks"]["database"]["backend"], "postgres");
    assert_eq!(ready["checks"]["kv"]["backend"], "redis");
    assert!(
        !scratch.0.join("data/example.db").exists(),
        "no SQLite file when a URL is given"
    );

    // The app migrated the PostgreSQL database at start-up.
    let config = weapp::db::DatabaseConfig {
        url: weapp::config::ConnectionUrl::new(db.url()),
        ..Default::default()
    };
    let pg = weapp::db::Db::connect(&config).unwrap();
    let mut conn = pg.conn().await.unwrap();
    use weapp::diesel_async::RunQueryDsl;
    let tables = weapp::with_conn!(conn, |c| {
        weapp::diesel::sql_query(
            "SELECT 1 FROM information_schema.tables WHERE table_name = 'weapp_schema_migrations'",
        )
        .execute(c)
        .await
    })
    .unwrap();
    assert_eq!(tables, 1);
    terminate(child);
}

#[test]
fn config_check_prints_the_effective_config_with_secrets_redacted() {
    let scratch = Scratch::new();
    let output = command(&scratch)
        .args(["config", "check"])
        .env(
            "WEAPP__DATABASE__URL",
            "postgres://shop:db-pass-123@db.internal:5432/shop",
        )
        .env("WEAPP__WECHAT__SECRET", "wechat-secret-456")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("postgres://shop:***@db.internal:5432/shop"),
        "{stdout}"
    );
    assert!(!stdout.contains("db-pass-123"), "{stdout}");
    assert!(!stdout.contains("wechat-secret-456"), "{stdout}");
    assert!(stdout.contains("# configuration OK"), "{stdout}");
}

/// The secrets a production shop needs besides the payment one.
const PRODUCTION_SECRETS: &[(&str, &str)] = &[
    (
        "WEAPP__WECHAT__SECRET",
        "a-real-app-secret-from-the-console",
    ),
    (
        "WEAPP__AUTH__JWT__KEYS__K1",
        "a-production-hs256-key-of-32-bytes-or-more",
    ),
    ("WEAPP__CRYPTO__KEYS__1", "AAECAwQFBgcICQoLDA0ODw=="),
    (
        "WEAPP__CRYPTO__BLIND_INDEX_KEY",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    ),
];

/// The shop's sample WeChat Pay keys (and sandbox) exist only in development: a
/// production start without the merchant's own keys, or with the samples, is refused.
#[test]
fn production_refuses_the_shops_sample_pay_keys() {
    let check = |environment: &str, keys: &[(&str, String)]| {
        let scratch = Scratch::new();
        let mut command = command(&scratch);
        command
            .args(["config", "check"])
            .env("WEAPP_ENV", environment)
            .envs(PRODUCTION_SECRETS.iter().copied())
            .envs(keys.iter().map(|(k, v)| (k, v)));
        let output = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        (output.status.success(), stderr)
    };
    let keys = |private_key: &str, apiv3_key: &str| {
        vec![
            (
                "WEAPP__PAY__MERCHANTS__SHOP__SERIAL_NO",
                "7A1B2C3D4E5F60718293A4B5C6D7E8F901234567".to_owned(),
            ),
            (
                "WEAPP__PAY__MERCHANTS__SHOP__PRIVATE_KEY",
                private_key.to_owned(),
            ),
            (
                "WEAPP__PAY__MERCHANTS__SHOP__APIV3_KEY",
                apiv3_key.to_owned(),
            ),
            (
                "WEAPP__PAY__MERCHANTS__SHOP__PLATFORM_CERTIFICATES",
                "true".to_owned(),
            ),
            (
                "WEAPP__PAY__MERCHANTS__SHOP__NOTIFY_URL",
                "https://shop.example.com/api/pay/notify/shop".to_owned(),
            ),
        ]
    };
    for environment in ["production", "staging", "Production"] {
        let (ok, stderr) = check(environment, &[]);
        assert!(!ok, "{environment}: started without the merchant's keys");
        assert!(
            stderr.contains("pay.merchants.shop.private_key"),
            "{stderr}"
        );
        assert!(stderr.contains("pay.merchants.shop.apiv3_key"), "{stderr}");
        assert!(
            !stderr.contains("wechat.sandbox"),
            "no sandbox outside development: {stderr}"
        );
        let samples = keys(
            weapp_pay::samples::MERCHANT_KEY_PEM,
            weapp_pay::samples::APIV3_KEY,
        );
        let (ok, stderr) = check(environment, &samples);
        assert!(!ok, "{environment}: started with the sample keys");
        assert!(stderr.contains("pay.merchants.shop.apiv3_key"), "{stderr}");
    }
    let own = keys(&own_private_key(), "an-apiv3-key-from-the-merchant-0");
    let (ok, stderr) = check("production", &own);
    assert!(ok, "{stderr}");
}

/// A merchant key of its own, as the merchant platform issues it (PKCS#8).
fn own_private_key() -> String {
    let out = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .output()
        .expect("openssl runs");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_bad_config_value_stops_the_app_with_the_key_named() {
    let scratch = Scratch::new();
    let output = command(&scratch)
        .args(["config", "check"])
        .env("WEAPP__SERVER__PORT", "http")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("server.port"), "{stderr}");
    assert!(stderr.contains("WEAPP__SERVER__PORT"), "{stderr}");
}

#[test]
fn a_bad_plugin_section_stops_the_app_with_the_key_named() {
    let cases = [
        // Wrong type, a value no rule allows, an unknown key: each names its key.
        ("WEAPP__ORDER__MAX_ITEMS", "lots", "order.max_items"),
        (
            "WEAPP__AUDIT__RETENTION_INTERVAL_MS",
            "0",
            "audit.retention_interval_ms",
        ),
        ("WEAPP__MESSAGE__BATCH_SIZE", "0", "message.batch_size"),
        ("WEAPP__SHOP__SEED_DEMO", "true", "shop.seed_demo"),
        ("WEAPP__SHOP", "3", "shop: must be a table"),
    ];
    for (var, value, key) in cases {
        let scratch = Scratch::new();
        let output = command(&scratch)
            .args(["config", "check"])
            .env(var, value)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{var}={value} was accepted");
        assert!(stderr.contains(key), "{var}={value}: {stderr}");
    }
    // `serve` refuses it the same way, before binding anything.
    let scratch = Scratch::new();
    let output = command(&scratch)
        .env("WEAPP__SERVER__PORT", "0")
        .env("WEAPP__AUDIT__RETENTION_INTERVAL_MS", "0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("audit.retention_interval_ms"), "{stderr}");
}

#[test]
fn migrate_applies_pending_migrations_once() {
    let scratch = Scratch::new();
    let run = || {
        let output = command(&scratch).arg("migrate").output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let first = run();
    assert!(first.contains("migration(s)"), "{first}");
    let second = run();
    assert!(second.starts_with("applied 0 migration(s)"), "{second}");
    assert!(scratch.0.join("data/example.db").exists());
}

/// `order seed <file>` adds the file's products once; a bad file is refused by name.
#[test]
fn order_seed_adds_the_products_of_a_file_once() {
    let scratch = Scratch::new();
    assert!(command(&scratch).arg("migrate").status().unwrap().success());
    let file = scratch.0.join("products.json");
    std::fs::write(
        &file,
        r#"[{"name": "Pu-erh 普洱", "description": "357 g cake", "price_fen": 9800, "stock": 20},
            {"name": "Gaiwan 盖碗", "price_fen": 6800, "stock": 5}]"#,
    )
    .unwrap();
    let seed = |path: &str| {
        command(&scratch)
            .args(["order", "seed", path])
            .output()
            .unwrap()
    };
    let first = seed("products.json");
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        stdout.contains(": Pu-erh 普洱") && stdout.contains(": Gaiwan 盖碗"),
        "{stdout}"
    );
    assert!(stdout.contains("2 of 2 product(s) added"), "{stdout}");
    let again = seed("products.json");
    assert!(String::from_utf8_lossy(&again.stdout).contains("0 of 2 product(s) added"));

    std::fs::write(&file, r#"[{"name": "", "price_fen": 1}]"#).unwrap();
    let bad = seed("products.json");
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("products.json: name must be 1 to 200 characters"),
        "{stderr}"
    );
    let missing = seed("nowhere.json");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read nowhere.json"));
}

#[test]
fn crypto_rotate_reports_counts() {
    let scratch = Scratch::new();
    let output = command(&scratch)
        .args(["crypto", "rotate", "--batch-size", "100"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.starts_with("scanned "), "{stdout}");
    assert!(stdout.contains("rotated 0"), "{stdout}");
}

#[test]
fn production_without_keys_refuses_to_rotate() {
    let scratch = Scratch::new();
    let output = command(&scratch)
        .args(["crypto", "rotate"])
        .env("WEAPP_ENV", "production")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("crypto.keys"), "{stderr}");
    assert!(
        !scratch.0.join("data/dev-keys.toml").exists(),
        "no dev keys outside development"
    );
}

#[tokio::test]
async fn the_sandbox_runs_standalone() {
    let scratch = Scratch::new();
    let child = command(&scratch)
        .args(["sandbox", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let (child, address) = wait_for_address(child, "sandbox listening on http://");
    let login: serde_json::Value = reqwest::Client::new()
        .post(format!("{address}/__sandbox/login"))
        .body(r#"{"openid":"o_standalone"}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(login["openid"], "o_standalone");
    let stats: serde_json::Value = reqwest::get(format!("{address}/__sandbox/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(stats.is_object());
    terminate(child);
}

#[tokio::test]
async fn session_key_and_tokens_never_reach_the_logs() {
    let scratch = Scratch::new();
    let mut child = command(&scratch)
        .env("WEAPP__SERVER__PORT", "0")
        .env("WEAPP__OBSERVE__LOG_LEVEL", "debug")
        .env("WEAPP__OBSERVE__LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut text);
        text
    });
    let (child, address, stdout_logs) = wait_for_address_with_logs(child, "listening on http://");
    let http = reqwest::Client::new();
    let fixture: serde_json::Value = http
        .post(format!("{address}/__sandbox/login"))
        .body(r#"{"openid":"o_logs","phone":"13812348000"}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session_key = fixture["session_key"].as_str().unwrap().to_owned();
    let tokens: serde_json::Value = http
        .post(format!("{address}/api/auth/login"))
        .json(&serde_json::json!({"code": fixture["code"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let phone_code: serde_json::Value = http
        .post(format!("{address}/__sandbox/phone-code"))
        .body(r#"{"openid":"o_logs"}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let phone = http
        .post(format!("{address}/api/auth/phone"))
        .bearer_auth(&access)
        .json(&serde_json::json!({"code": phone_code["code"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(phone.status(), 200);
    let me = http
        .get(format!("{address}/api/me"))
        .header("X-Request-Id", "trace-me-1")
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let user_id = tokens["user_id"].as_i64().unwrap();
    terminate(child);
    std::thread::sleep(Duration::from_millis(200));
    let logs = format!("{}{}", errors.join().unwrap(), stdout_logs.lock().unwrap());
    assert!(
        logs.contains("login"),
        "the login was logged at all:\n{logs}"
    );
    for secret in [
        &session_key,
        &access,
        &refresh,
        &"13812348000".to_owned(),
        &"sandbox-only-secret".to_owned(),
    ] {
        assert!(
            !logs.contains(secret.as_str()),
            "{secret} leaked into the logs"
        );
    }

    // JSON lines, one span per request: request id, method, route pattern, status,
    // latency and the authenticated user.
    let finished: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|entry| entry["fields"]["message"] == "request finished")
        .collect();
    let me_span = finished
        .iter()
        .map(|entry| &entry["span"])
        .find(|span| span["request_id"] == "trace-me-1")
        .unwrap_or_else(|| panic!("no finished span for /api/me in:\n{logs}"));
    assert_eq!(me_span["name"], "request");
    assert_eq!(me_span["method"], "GET");
    assert_eq!(me_span["route"], "/api/me");
    assert_eq!(me_span["status"], 200);
    assert_eq!(me_span["user_id"], user_id);
    assert!(me_span["latency_ms"].as_f64().is_some());
    assert!(
        finished
            .iter()
            .any(|e| e["span"]["route"] == "/api/auth/login" && e["span"]["status"] == 200),
        "login span"
    );
}

/// `audit verify` passes on the untouched log and names the row a direct database
/// edit changed.
#[tokio::test]
async fn audit_verify_finds_a_row_edited_in_the_database() {
    let scratch = Scratch::new();
    // Three logins and nothing else: no demo products, whose additions are audited.
    let (child, address) = serve(&scratch, &[("WEAPP__SHOP__SEED_DEMO_PRODUCTS", "false")]);
    let client = reqwest::Client::new();
    for openid in ["o_audit_a", "o_audit_b", "o_audit_c"] {
        let login: serde_json::Value = client
            .post(format!("{address}/__sandbox/login"))
            .body(format!(r#"{{"openid":"{openid}"}}"#))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let response = client
            .post(format!("{address}/api/auth/login"))
            .json(&serde_json::json!({"code": login["code"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    terminate(child);

    let verify = || {
        command(&scratch)
            .args(["audit", "verify"])
            .output()
            .unwrap()
    };
    let clean = verify();
    let stdout = String::from_utf8_lossy(&clean.stdout);
    assert!(clean.status.success(), "{stdout}");
    assert!(stdout.contains("audit log OK: 3 row(s)"), "{stdout}");

    // Edit row 2 directly in the SQLite file, as an intruder with database access would.
    let edited = Command::new("python3")
        .args([
            "-c",
            "import sqlite3; c = sqlite3.connect('data/example.db'); \
             c.execute(\"UPDATE audit_log SET actor = 'admin' WHERE id = 2\"); c.commit()",
        ])
        .current_dir(&scratch.0)
        .status()
        .unwrap();
    assert!(edited.success());
    let tampered = verify();
    let stdout = String::from_utf8_lossy(&tampered.stdout);
    assert!(!tampered.status.success(), "verify must fail: {stdout}");
    assert!(stdout.contains("row 2 was edited"), "{stdout}");
}

/// SIGHUP re-reads the configuration files: new CORS origins apply without a
/// restart and `/healthz` reports the reload; a broken file is refused and the
/// running configuration stays.
#[tokio::test]
async fn sighup_reloads_the_configuration() {
    let scratch = Scratch::new();
    let (child, address) = serve(&scratch, &[]);
    let http = reqwest::Client::new();
    let allowed = |origin: &'static str| {
        let request = http
            .request(reqwest::Method::OPTIONS, format!("{address}/api/products"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "GET");
        async move {
            let response = request.send().await.unwrap();
            response
                .headers()
                .get("access-control-allow-origin")
                .is_some()
        }
    };
    let last_reload = || {
        let request = http.get(format!("{address}/healthz"));
        async move {
            let health: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
            health["last_reload"].as_str().map(str::to_owned)
        }
    };
    let hangup = || {
        let status = Command::new("kill")
            .args(["-HUP", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };
    assert!(!allowed("https://ops.example.com").await);
    assert_eq!(last_reload().await, None);

    let config = scratch.0.join("config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("default.toml"),
        "[guard.cors]\nallowed_origins = [\"https://ops.example.com\"]\n",
    )
    .unwrap();
    hangup();
    let mut reloaded = None;
    for _ in 0..100 {
        reloaded = last_reload().await;
        if reloaded.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reloaded.is_some(), "the reload was applied");
    assert!(allowed("https://ops.example.com").await);

    std::fs::write(config.join("default.toml"), "[guard]\nno_such_key = 1\n").unwrap();
    hangup();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(last_reload().await, reloaded, "the broken file was refused");
    assert!(
        allowed("https://ops.example.com").await,
        "the running settings stay"
    );
    terminate(child);
}

/// `--help` lists the plugins' commands beside the built-in ones.
#[test]
fn help_lists_the_plugins_commands() {
    let scratch = Scratch::new();
    let output = command(&scratch).arg("--help").output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("Plugin commands:"), "{stdout}");
    assert!(stdout.contains("audit verify"), "{stdout}");
    assert!(
        stdout.contains("migrate"),
        "the built-in ones stay: {stdout}"
    );
}
