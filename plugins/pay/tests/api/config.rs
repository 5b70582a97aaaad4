//! `[pay]` validation: what production refuses, what development fills in.

use weapp::config::{ConfigError, ConfigLoader};
use weapp_pay::samples;

fn issue_keys(err: ConfigError) -> Vec<String> {
    match err {
        ConfigError::Invalid(issues) => {
            let mut keys: Vec<String> = issues.into_iter().map(|i| i.key).collect();
            keys.sort();
            keys
        }
        other => panic!("expected config issues, got {other}"),
    }
}

fn production() -> ConfigLoader {
    ConfigLoader::isolated()
        .environment("production")
        .set("wechat.appid", "wx1234567890abcdef")
        .set("wechat.secret", "a-real-app-secret-from-the-console")
        .set(
            "auth.jwt.keys.main",
            "a-real-jwt-key-of-at-least-thirty-two-bytes",
        )
        .set("crypto.keys.1", "AAECAwQFBgcICQoLDA0ODw==")
        .set(
            "crypto.blind_index_key",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        )
}

#[test]
fn production_requires_every_key_of_a_merchant() {
    let err = production()
        .set("pay.merchants.shop.mchid", "1900000109")
        .load()
        .unwrap_err();
    assert_eq!(
        issue_keys(err),
        [
            "pay.merchants.shop.apiv3_key",
            "pay.merchants.shop.notify_url",
            "pay.merchants.shop.private_key",
            "pay.merchants.shop.public_key",
            "pay.merchants.shop.serial_no",
        ]
    );
}

#[test]
fn production_refuses_the_sandboxs_published_keys() {
    let base = production()
        .set("pay.merchants.shop.mchid", "1900000109")
        .set("pay.merchants.shop.serial_no", samples::MERCHANT_SERIAL)
        .set(
            "pay.merchants.shop.notify_url",
            "https://shop.example.com/api/pay/notify/shop",
        )
        .set("pay.merchants.shop.public_key_id", samples::PUBLIC_KEY_ID);
    let err = base
        .clone()
        .set("pay.merchants.shop.private_key", samples::MERCHANT_KEY_PEM)
        .set(
            "pay.merchants.shop.apiv3_key",
            "a-real-apiv3-key-of-32-bytes-000",
        )
        .set(
            "pay.merchants.shop.public_key",
            samples::PLATFORM_A_PUBLIC_KEY_PEM,
        )
        .load()
        .unwrap_err();
    assert_eq!(issue_keys(err), ["pay.merchants.shop.private_key"]);
    let err = base
        .clone()
        .set("pay.merchants.shop.private_key", own_key())
        .set("pay.merchants.shop.apiv3_key", samples::APIV3_KEY)
        .set(
            "pay.merchants.shop.public_key",
            samples::PLATFORM_A_PUBLIC_KEY_PEM,
        )
        .load()
        .unwrap_err();
    assert_eq!(issue_keys(err), ["pay.merchants.shop.apiv3_key"]);
    let err = base
        .clone()
        .set("pay.merchants.shop.private_key", own_key())
        .set(
            "pay.merchants.shop.apiv3_key",
            "a-real-apiv3-key-of-32-bytes-000",
        )
        .set(
            "pay.merchants.shop.public_key",
            samples::PLATFORM_A_PUBLIC_KEY_PEM,
        )
        .load()
        .unwrap_err();
    assert_eq!(issue_keys(err), ["pay.merchants.shop.public_key"]);
    // No published key pair passes for the merchant's own, whichever it is.
    for sample in [samples::PLATFORM_A_KEY_PEM, samples::PLATFORM_B_KEY_PEM] {
        let err = base
            .clone()
            .set("pay.merchants.shop.private_key", sample)
            .set(
                "pay.merchants.shop.apiv3_key",
                "a-real-apiv3-key-of-32-bytes-000",
            )
            .set("pay.merchants.shop.platform_certificates", true)
            .set("pay.merchants.shop.public_key_id", "")
            .load()
            .unwrap_err();
        assert_eq!(issue_keys(err), ["pay.merchants.shop.private_key"]);
    }
    base.set("pay.merchants.shop.private_key", own_key())
        .set(
            "pay.merchants.shop.apiv3_key",
            "a-real-apiv3-key-of-32-bytes-000",
        )
        .set("pay.merchants.shop.platform_certificates", true)
        .set("pay.merchants.shop.public_key_id", "")
        .load()
        .expect("the merchant's own keys, WeChat Pay's certificates");
}

#[test]
fn bad_values_are_named() {
    let err = ConfigLoader::isolated()
        .set("wechat.appid", "wx1234567890abcdef")
        .set("pay.merchants.shop.mchid", "19000x")
        .set("pay.merchants.shop.serial_no", "not hex")
        .set("pay.merchants.shop.public_key_id", "KEY_1")
        .set("pay.merchants.bad_name!.mchid", "1")
        .set("pay.max_skew_s", 0)
        .load()
        .unwrap_err();
    assert_eq!(
        issue_keys(err),
        [
            "pay.max_skew_s",
            "pay.merchants.bad_name!.",
            "pay.merchants.shop.mchid",
            "pay.merchants.shop.public_key_id",
            "pay.merchants.shop.public_key_id",
            "pay.merchants.shop.serial_no",
        ]
    );
    let err = ConfigLoader::isolated()
        .set("wechat.appid", "wx1234567890abcdef")
        .set("pay.merchants.shop.mchid", "1900000109")
        .set(
            "pay.merchants.shop.private_key",
            "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n",
        )
        .load()
        .unwrap_err();
    assert_eq!(issue_keys(err), ["pay.merchants.shop.private_key"]);
}

/// A key of the merchant's own: a fresh one from openssl, as the merchant platform
/// would issue it (PKCS#8).
fn own_key() -> String {
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
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
