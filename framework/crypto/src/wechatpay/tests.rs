//! Known answers from other implementations: RSA-SHA256 signatures made by
//! `openssl dgst -sha256 -sign`, and AEAD_AES_256_GCM resources made by Node's
//! crypto module (both on this machine; a missing tool fails the test, naming it).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;

/// A folder of its own for one test, removed afterwards.
struct Scratch(PathBuf);

impl Scratch {
    fn new(label: &str) -> Scratch {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir = std::env::temp_dir().join(format!(
            "weapp-wechatpay-{label}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(program: &str, args: &[&str], dir: &Path) -> Vec<u8> {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program} is needed for this known-answer test: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// An RSA key pair made by openssl: (PKCS#8 private PEM, public PEM).
fn openssl_key(dir: &Scratch) -> (String, String) {
    run(
        "openssl",
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "key.pem",
        ],
        &dir.0,
    );
    run(
        "openssl",
        &["pkey", "-in", "key.pem", "-pubout", "-out", "pub.pem"],
        &dir.0,
    );
    (
        std::fs::read_to_string(dir.file("key.pem")).unwrap(),
        std::fs::read_to_string(dir.file("pub.pem")).unwrap(),
    )
}

fn openssl_sign(dir: &Scratch, key: &str, message: &[u8]) -> String {
    std::fs::write(dir.file("message"), message).unwrap();
    run(
        "openssl",
        &[
            "dgst", "-sha256", "-sign", key, "-out", "sig.bin", "message",
        ],
        &dir.0,
    );
    STANDARD.encode(std::fs::read(dir.file("sig.bin")).unwrap())
}

#[test]
fn the_signed_messages_are_wechats_lines() {
    assert_eq!(
        request_message(
            "GET",
            "/v3/certificates",
            1554208460,
            "593BEC0C930BF1AFEB40B4A08C8FB242",
            ""
        ),
        "GET\n/v3/certificates\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n\n"
    );
    assert_eq!(
        response_message(
            "1554209980",
            "c5ac7061fccab6bf3e254dcf98995b8c",
            b"{\"a\":1}"
        ),
        b"1554209980\nc5ac7061fccab6bf3e254dcf98995b8c\n{\"a\":1}\n"
    );
    assert_eq!(
        pay_sign_message(
            "wx8888888888888888",
            "1414561699",
            "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
            "prepay_id=wx201410272009395522657a690389285100"
        ),
        "wx8888888888888888\n1414561699\n5K8264ILTKCH16CQ2502SI8ZNMTM67VS\nprepay_id=wx201410272009395522657a690389285100\n"
    );
    assert_eq!(
        authorization(
            "1900009191",
            "593BEC0C930BF1AFEB40B4A08C8FB242",
            1554208460,
            "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C",
            "c2ln"
        ),
        "WECHATPAY2-SHA256-RSA2048 mchid=\"1900009191\",nonce_str=\"593BEC0C930BF1AFEB40B4A08C8FB242\",signature=\"c2ln\",timestamp=\"1554208460\",serial_no=\"1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C\""
    );
}

#[test]
fn signatures_match_openssl_and_verify_both_ways() {
    let dir = Scratch::new("rsa");
    let (private_pem, public_pem) = openssl_key(&dir);
    let message = request_message(
        "POST",
        "/v3/pay/transactions/jsapi",
        1554208460,
        "593BEC0C930BF1AFEB40B4A08C8FB242",
        r#"{"appid":"wxd678efh567hg6787","mchid":"1230000109","description":"Image形象店-深圳腾大-QQ公仔","out_trade_no":"1217752501201407033233368018","amount":{"total":100,"currency":"CNY"}}"#,
    );
    let expected = openssl_sign(&dir, "key.pem", message.as_bytes());

    let merchant = MerchantKey::from_pem(&private_pem).unwrap();
    assert_eq!(merchant.sign(message.as_bytes()), expected, "PKCS#8 key");
    // The same key in PKCS#1 form signs the same.
    run(
        "openssl",
        &["rsa", "-in", "key.pem", "-traditional", "-out", "key1.pem"],
        &dir.0,
    );
    let pkcs1 = std::fs::read_to_string(dir.file("key1.pem")).unwrap();
    assert!(pkcs1.contains("BEGIN RSA PRIVATE KEY"));
    assert_eq!(
        MerchantKey::from_pem(&pkcs1)
            .unwrap()
            .sign(message.as_bytes()),
        expected,
        "PKCS#1 key"
    );

    let platform = PlatformKey::from_public_key_pem(&public_pem).unwrap();
    assert_eq!(platform.verify(message.as_bytes(), &expected), Ok(()));
    let mut changed = message.clone().into_bytes();
    changed[0] = b'G';
    assert_eq!(
        platform.verify(&changed, &expected),
        Err(PayCryptoError::BadSignature)
    );
    for bad in ["", "not base64!", "c2ln"] {
        assert_eq!(
            platform.verify(message.as_bytes(), bad),
            Err(PayCryptoError::BadSignature),
            "{bad:?}"
        );
    }
    // Another key's signature does not verify.
    let other = Scratch::new("rsa-other");
    let (_, other_public) = openssl_key(&other);
    assert_eq!(
        PlatformKey::from_public_key_pem(&other_public)
            .unwrap()
            .verify(message.as_bytes(), &expected),
        Err(PayCryptoError::BadSignature)
    );
}

#[test]
fn keys_that_are_not_rsa_pems_are_refused() {
    assert_eq!(
        MerchantKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
            .unwrap_err(),
        PayCryptoError::InvalidKey("private")
    );
    assert_eq!(
        PlatformKey::from_public_key_pem("not a pem").unwrap_err(),
        PayCryptoError::InvalidKey("public")
    );
    assert_eq!(
        ApiV3Key::new(b"too short").unwrap_err(),
        PayCryptoError::InvalidApiV3Key
    );
    assert!(!format!("{:?}", ApiV3Key::new(&[b'k'; 32]).unwrap()).contains('k'));
}

#[test]
fn resources_decrypt_as_node_encrypts_them_and_nothing_else_does() {
    const KEY: &str = "0123456789abcdefghijklmnopqrstuv";
    const NONCE: &str = "fdasflkja484";
    const AAD: &str = "transaction";
    let plaintext = r#"{"mchid":"1230000109","out_trade_no":"1217752501201407033233368018","trade_state":"SUCCESS","amount":{"total":100,"payer_total":100,"currency":"CNY"}}"#;
    let dir = Scratch::new("gcm");
    let script = format!(
        "const c = require('crypto').createCipheriv('aes-256-gcm', Buffer.from('{KEY}'), Buffer.from('{NONCE}'));\
         c.setAAD(Buffer.from('{AAD}'));\
         const out = Buffer.concat([c.update(Buffer.from(process.argv[1])), c.final(), c.getAuthTag()]);\
         process.stdout.write(out.toString('base64'));"
    );
    let from_node = String::from_utf8(run("node", &["-e", &script, plaintext], &dir.0)).unwrap();

    let key = ApiV3Key::new(KEY.as_bytes()).unwrap();
    assert_eq!(
        key.decrypt(AAD, NONCE, &from_node).unwrap().as_slice(),
        plaintext.as_bytes()
    );
    assert_eq!(
        key.encrypt(AAD, NONCE, plaintext.as_bytes()).unwrap(),
        from_node
    );

    let wrong = ApiV3Key::new(b"0123456789abcdefghijklmnopqrstuX").unwrap();
    assert_eq!(
        wrong.decrypt(AAD, NONCE, &from_node),
        Err(PayCryptoError::Undecryptable)
    );
    assert_eq!(
        key.decrypt("certificate", NONCE, &from_node),
        Err(PayCryptoError::Undecryptable)
    );
    let mut tampered = STANDARD.decode(&from_node).unwrap();
    tampered[3] ^= 1;
    assert_eq!(
        key.decrypt(AAD, NONCE, &STANDARD.encode(tampered)),
        Err(PayCryptoError::Undecryptable)
    );
    for (nonce, ciphertext) in [("short", from_node.as_str()), (NONCE, "%%%"), (NONCE, "")] {
        assert_eq!(
            key.decrypt(AAD, nonce, ciphertext),
            Err(PayCryptoError::Undecryptable),
            "{nonce} {ciphertext}"
        );
    }
}

#[test]
fn platform_certificates_give_serial_validity_and_key_as_openssl_does() {
    let dir = Scratch::new("x509");
    openssl_key(&dir);
    // A serial with its top bit set (DER pads it with a zero byte) and one without.
    for serial in [
        "9F4C2D7E8A1B3C5D6E7F8091A2B3C4D5E6F70819",
        "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C",
    ] {
        run(
            "openssl",
            &[
                "req",
                "-x509",
                "-key",
                "key.pem",
                "-subj",
                "/CN=Tenpay.com Root CA",
                "-days",
                "3",
                "-set_serial",
                &format!("0x{serial}"),
                "-out",
                "cert.pem",
            ],
            &dir.0,
        );
        let shown = String::from_utf8(run(
            "openssl",
            &["x509", "-in", "cert.pem", "-noout", "-serial"],
            &dir.0,
        ))
        .unwrap();
        assert_eq!(shown.trim(), format!("serial={serial}"));

        let pem = std::fs::read_to_string(dir.file("cert.pem")).unwrap();
        let certificate = PlatformCertificate::from_pem(&pem).unwrap();
        assert_eq!(certificate.serial_no, serial);
        assert_eq!(certificate.not_after - certificate.not_before, 3 * 86_400);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!(
            (certificate.not_before - now).abs() < 600,
            "{certificate:?}"
        );

        let message = response_message("1554209980", "c5ac7061fccab6bf3e254dcf98995b8c", b"{}");
        let signature = openssl_sign(&dir, "key.pem", &message);
        assert_eq!(certificate.key.verify(&message, &signature), Ok(()));
    }
    assert!(matches!(
        PlatformCertificate::from_pem(
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
        ),
        Err(PayCryptoError::InvalidKey("certificate"))
    ));
}
