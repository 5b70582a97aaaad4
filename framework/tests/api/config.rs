use std::path::PathBuf;

use weapp::config::{ConfigError, ConfigLoader};
use weapp::db::DatabaseConfig;
use weapp::kv::RedisConfig;
use weapp::observe::{LogFormat, ObserveConfig};

/// A temporary config directory with the given files, removed on drop.
struct ConfigDir(PathBuf);

impl ConfigDir {
    fn new(files: &[(&str, &str)]) -> Self {
        let dir = std::env::temp_dir().join(format!("weapp-config-{}", uuid_like()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, body) in files {
            std::fs::write(dir.join(name), body).unwrap();
        }
        ConfigDir(dir)
    }
}

impl Drop for ConfigDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn uuid_like() -> String {
    format!("{}-{:?}", std::process::id(), std::time::Instant::now())
        .replace(|c: char| !c.is_ascii_alphanumeric(), "")
}

#[test]
fn defaults_apply_with_no_configuration() {
    let config = ConfigLoader::isolated().load().unwrap();
    assert_eq!(config.server.port, 8080);
    assert_eq!(config.server.host, "127.0.0.1");
    assert_eq!(config.server.body_limit_bytes, 64 * 1024);
    assert!(
        config
            .get::<DatabaseConfig>()
            .unwrap()
            .url
            .expose()
            .starts_with("sqlite://")
    );
    assert!(config.get::<RedisConfig>().unwrap().url.is_none());
    assert_eq!(
        config.get::<ObserveConfig>().unwrap().log_format,
        LogFormat::Auto
    );
}

#[test]
fn layers_override_in_order() {
    let dir = ConfigDir::new(&[
        (
            "default.toml",
            "[server]\nport = 1001\nhost = \"0.0.0.0\"\nworkers = 3\n[database]\nmax_connections = 7\n",
        ),
        ("test.toml", "[server]\nport = 1002\nworkers = 4\n"),
    ]);
    let loader = ConfigLoader::isolated()
        .dir(&dir.0)
        .environment("test")
        .defaults_toml(
            "[server]\nport = 1000\nshutdown_timeout_s = 5\n[observe]\nlog_format = \"json\"\n",
        )
        .vars([("WEAPP__SERVER__WORKERS", "5"), ("UNRELATED", "x")]);
    let config = loader.load().unwrap();
    assert_eq!(
        config.server.shutdown_timeout_s, 5,
        "app defaults over built-ins"
    );
    assert_eq!(
        config.server.host, "0.0.0.0",
        "default.toml over app defaults"
    );
    assert_eq!(config.get::<DatabaseConfig>().unwrap().max_connections, 7);
    assert_eq!(
        config.server.port, 1002,
        "environment file over default.toml"
    );
    assert_eq!(config.server.workers, 5, "variables over files");
    assert_eq!(
        config.get::<ObserveConfig>().unwrap().log_format,
        LogFormat::Json
    );
    assert_eq!(config.environment, "test");

    let config = loader.set("server.workers", 9).load().unwrap();
    assert_eq!(
        config.server.workers, 9,
        "explicit overrides over everything"
    );
}

#[test]
fn a_wrong_type_names_the_key_and_the_variable() {
    let err = ConfigLoader::isolated()
        .vars([("WEAPP__SERVER__PORT", "eighty")])
        .load()
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("server.port"), "{message}");
    assert!(message.contains("WEAPP__SERVER__PORT"), "{message}");
}

#[test]
fn an_unknown_key_in_a_framework_section_is_rejected() {
    let dir = ConfigDir::new(&[("default.toml", "[server]\nprot = 1\n")]);
    let message = ConfigLoader::isolated()
        .dir(&dir.0)
        .load()
        .unwrap_err()
        .to_string();
    assert!(message.contains("prot"), "{message}");
}

#[test]
fn invalid_values_are_all_reported_with_their_keys() {
    let err = ConfigLoader::isolated()
        .set("database.url", "oracle://db/x")
        .set("database.max_connections", 2)
        .set("database.min_idle", 5)
        .set("server.body_limit_bytes", 0)
        .set("redis.url", "http://cache")
        .load()
        .unwrap_err();
    let ConfigError::Invalid(issues) = &err else {
        panic!("expected validation issues, got {err}");
    };
    let keys: Vec<&str> = issues.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "server.body_limit_bytes",
            "database.url",
            "database.min_idle",
            "redis.url"
        ]
    );
    assert!(
        issues[1].reason.contains("unsupported scheme"),
        "{}",
        issues[1].reason
    );
}

#[test]
fn disabled_plugins_accept_a_comma_separated_variable() {
    let config = ConfigLoader::isolated()
        .vars([("WEAPP__PLUGINS__DISABLED", "audit, message")])
        .load()
        .unwrap();
    assert_eq!(config.plugins.disabled, ["audit", "message"]);
}

#[derive(Debug, Default, serde::Deserialize, PartialEq)]
#[serde(default)]
struct OrderSection {
    unpaid_timeout_s: u64,
    currency: String,
}

#[test]
fn plugin_sections_are_read_by_type() {
    let config = ConfigLoader::isolated()
        .defaults_toml("[order]\ncurrency = \"CNY\"\n")
        .vars([("WEAPP__ORDER__UNPAID_TIMEOUT_S", "900")])
        .load()
        .unwrap();
    let order: OrderSection = config.section("order").unwrap();
    assert_eq!(
        order,
        OrderSection {
            unpaid_timeout_s: 900,
            currency: "CNY".into()
        }
    );
    let missing: OrderSection = config.section("nothing").unwrap();
    assert_eq!(missing, OrderSection::default());
}

#[test]
fn config_check_output_redacts_secrets() {
    let config = ConfigLoader::isolated()
        .set("database.url", "postgres://app:db-password@db:5432/shop")
        .set("redis.url", "redis://:redis-password@cache:6379/0")
        .defaults_toml(
            "[wechat]\nappid = \"wx123\"\nsecret = \"app-secret\"\n\
             [auth.jwt.keys]\nk1 = \"hs256-material-0123456789-0123456789\"\n\
             [payments]\nmerchant = \"m-42\"\napi_key = \"pay-key\"\n",
        )
        .load()
        .unwrap();
    let printed = config.redacted_toml();
    for secret in [
        "db-password",
        "redis-password",
        "app-secret",
        "hs256-material",
        "pay-key",
    ] {
        assert!(!printed.contains(secret), "{secret} leaked:\n{printed}");
    }
    assert!(
        printed.contains("postgres://app:***@db:5432/shop"),
        "{printed}"
    );
    assert!(
        printed.contains("wx123"),
        "non-secret plugin values stay visible:\n{printed}"
    );
    assert!(!format!("{config:?}").contains("db-password"));
}

#[test]
fn crypto_keys_are_validated_with_their_keys_named() {
    let sixteen = "AAAAAAAAAAAAAAAAAAAAAA=="; // 16 zero bytes
    let thirty_two = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="; // 32 bytes of 1
    let ok = ConfigLoader::isolated()
        .set("crypto.keys.1", sixteen)
        .set("crypto.blind_index_key", thirty_two)
        .load();
    assert!(ok.is_ok(), "{:?}", ok.err());

    let issues = |loader: ConfigLoader| match loader.load().unwrap_err() {
        ConfigError::Invalid(issues) => issues
            .into_iter()
            .map(|i| format!("{}: {}", i.key, i.reason))
            .collect::<Vec<_>>(),
        other => panic!("{other}"),
    };
    let found = issues(
        ConfigLoader::isolated()
            .set("crypto.keys.1", "AAAA")
            .set("crypto.keys.x", sixteen)
            .set("crypto.blind_index_key", thirty_two),
    );
    assert!(
        found
            .iter()
            .any(|i| i.starts_with("crypto.keys.1: decodes to 3 bytes")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|i| i.starts_with("crypto.keys.x: key ids")),
        "{found:?}"
    );

    let found = issues(ConfigLoader::isolated().set("crypto.keys.1", sixteen));
    assert!(
        found
            .iter()
            .any(|i| i.starts_with("crypto.blind_index_key: required")),
        "{found:?}"
    );

    let found = issues(
        ConfigLoader::isolated()
            .set("crypto.keys.1", sixteen)
            .set("crypto.active_key", 2)
            .set("crypto.blind_index_key", thirty_two),
    );
    assert!(
        found
            .iter()
            .any(|i| i.starts_with("crypto.active_key: 2 is not among")),
        "{found:?}"
    );

    let found = issues(
        ConfigLoader::isolated()
            .set("crypto.keys.1", sixteen)
            .set("crypto.algorithm", "aes-256-gcm")
            .set("crypto.blind_index_key", sixteen),
    );
    assert!(
        found
            .iter()
            .any(|i| i.contains("crypto.algorithm needs 32")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|i| i.contains("must differ from every field key")),
        "{found:?}"
    );

    let printed = ConfigLoader::isolated()
        .set("crypto.keys.1", sixteen)
        .set("crypto.blind_index_key", thirty_two)
        .load()
        .unwrap()
        .redacted_toml();
    assert!(
        !printed.contains(sixteen) && !printed.contains(thirty_two),
        "{printed}"
    );
}

#[test]
fn a_section_set_on_one_configuration_leaves_its_earlier_clones_alone() {
    let original = ConfigLoader::isolated()
        .vars([("WEAPP__OBSERVE__LOG_LEVEL", "warn")])
        .load()
        .unwrap();
    let parsed = original.get::<ObserveConfig>().unwrap();
    assert_eq!(parsed.log_level, "warn");
    // Parsed once, then shared.
    assert!(std::sync::Arc::ptr_eq(
        &parsed,
        &original.get::<ObserveConfig>().unwrap()
    ));

    let mut changed = original.clone();
    let mut observe = (*parsed).clone();
    observe.log_level = "weapp=loud".into();
    changed.set_section(observe);
    assert_eq!(original.get::<ObserveConfig>().unwrap().log_level, "warn");
    let refused = changed.validate().unwrap_err();
    assert!(
        refused.to_string().contains("observe.log_level"),
        "{refused}"
    );
    original.validate().unwrap();
}
