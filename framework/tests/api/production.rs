//! Production-strict configuration: environments are an allow-list, every secret
//! must be set and not a published sample, and the sandbox stays on loopback.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use weapp::config::{ConfigError, ConfigLoader};

/// Everything a production deployment of the bare framework must set.
fn production_secrets() -> Vec<(&'static str, String)> {
    vec![
        ("WEAPP__WECHAT__APPID", "wx1234567890abcdef".into()),
        (
            "WEAPP__WECHAT__SECRET",
            "a-real-app-secret-from-the-console".into(),
        ),
        (
            "WEAPP__AUTH__JWT__KEYS__K1",
            "a-production-hs256-key-of-32-bytes-or-more".into(),
        ),
        ("WEAPP__CRYPTO__KEYS__1", STANDARD.encode([7u8; 16])),
        ("WEAPP__CRYPTO__BLIND_INDEX_KEY", STANDARD.encode([9u8; 32])),
    ]
}

fn issue_keys(err: ConfigError) -> Vec<String> {
    match err {
        ConfigError::Invalid(issues) => issues.into_iter().map(|i| i.key).collect(),
        other => panic!("expected invalid values, got {other}"),
    }
}

#[test]
fn only_development_and_test_are_development() {
    for environment in [
        "production",
        "staging",
        "Production",
        "DEVELOPMENT",
        "prod",
        "",
    ] {
        let err = ConfigLoader::isolated()
            .environment(environment)
            .set("wechat.sandbox", true)
            .load()
            .expect_err(environment);
        let keys = issue_keys(err);
        for key in [
            "wechat.sandbox",
            "wechat.appid",
            "wechat.secret",
            "auth.jwt.keys",
            "crypto.keys",
            "crypto.blind_index_key",
        ] {
            assert!(keys.contains(&key.to_owned()), "{environment:?}: {keys:?}");
        }
    }
    for environment in ["development", "test"] {
        let config = ConfigLoader::isolated()
            .environment(environment)
            .set("wechat.sandbox", true)
            .load()
            .unwrap();
        assert!(config.is_development());
    }
}

#[test]
fn production_starts_with_every_secret_set() {
    let config = ConfigLoader::isolated()
        .environment("staging")
        .vars(production_secrets())
        .load()
        .unwrap();
    assert!(!config.is_development());
}

#[test]
fn sample_secrets_are_refused_by_value_outside_development() {
    let mut vars = production_secrets();
    vars.retain(|(name, _)| *name != "WEAPP__WECHAT__SECRET");
    vars.push(("WEAPP__WECHAT__SECRET", "sandbox-only-secret".into()));
    vars.push(("WEAPP__AUTH__ADMIN_TOKENS__OPS", "short-admin-token".into()));
    vars.push((
        "WEAPP__AUTH__ADMIN_TOKENS__ROBOT",
        "an-admin-token-long-enough-to-be-unguessable".into(),
    ));
    let err = ConfigLoader::isolated()
        .environment("production")
        .vars(vars.clone())
        .load()
        .unwrap_err();
    let mut keys = issue_keys(err);
    keys.sort();
    assert_eq!(
        keys,
        ["auth.admin_tokens.ops", "wechat.secret"],
        "the sample secret and the short admin token, nothing else"
    );
    // In development the same values are accepted.
    ConfigLoader::isolated()
        .environment("development")
        .vars(vars)
        .load()
        .unwrap();
}

#[test]
fn the_sandbox_serves_only_on_a_loopback_host() {
    for host in ["0.0.0.0", "::", "192.168.1.10", "example.com"] {
        let err = ConfigLoader::isolated()
            .set("wechat.sandbox", true)
            .set("server.host", host)
            .load()
            .expect_err(host);
        assert_eq!(issue_keys(err), ["wechat.sandbox"], "{host}");
    }
    for host in ["127.0.0.1", "::1", "[::1]", "localhost", "127.0.0.2"] {
        ConfigLoader::isolated()
            .set("wechat.sandbox", true)
            .set("server.host", host)
            .load()
            .unwrap_or_else(|e| panic!("{host}: {e}"));
    }
}

#[test]
fn an_apps_development_table_applies_only_in_development() {
    let defaults = "[server]\nport = 9001\n\n[development.wechat]\nsandbox = true\nsecret = \"sandbox-only-secret\"\n";
    let dev = ConfigLoader::isolated()
        .environment("development")
        .defaults_toml(defaults)
        .load()
        .unwrap();
    let wechat = dev.get::<weapp::wechat::WechatConfig>().unwrap();
    assert!(wechat.sandbox);
    assert_eq!(wechat.secret.expose(), "sandbox-only-secret");
    assert_eq!(dev.server.port, 9001);

    let production = ConfigLoader::isolated()
        .environment("production")
        .defaults_toml(defaults)
        .vars(production_secrets())
        .load()
        .unwrap();
    let wechat = production.get::<weapp::wechat::WechatConfig>().unwrap();
    assert!(!wechat.sandbox, "no sandbox outside development");
    assert_eq!(wechat.secret.expose(), "a-real-app-secret-from-the-console");
    assert_eq!(production.server.port, 9001);
}

/// WeChat's sample push token is digits; as a variable it parses as a number.
#[test]
fn a_numeric_variable_for_a_secret_is_taken_as_text() {
    let config = ConfigLoader::isolated()
        .vars([
            ("WEAPP__WECHAT__APPID", "wx1234567890abcdef"),
            ("WEAPP__WECHAT__PUSH__TOKEN", "0123456"),
            (
                "WEAPP__WECHAT__PUSH__ENCODING_AES_KEY",
                "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
            ),
            (
                "WEAPP__AUTH__JWT__KEYS__K1",
                "12345678901234567890123456789012345",
            ),
        ])
        .load()
        .unwrap();
    let wechat = config.get::<weapp::wechat::WechatConfig>().unwrap();
    assert_eq!(
        wechat.push.token.expose(),
        "0123456",
        "digits kept as written"
    );
}
