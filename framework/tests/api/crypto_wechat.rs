use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockModeEncrypt, KeyIvInit};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use weapp::actix_web::ResponseError;
use weapp::crypto::{WechatDecryptError, WechatDecryptor};

const APPID: &str = "wx4f4bc4dec97d474b";
const SESSION_KEY: &str = "tiihtNczf5v6AKRyjwEUhQ==";
const IV: &str = "r7BXXKkLb8qrSNn05n0qiA==";
const ENCRYPTED: &str = "CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC+oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew==";
const STAMP: i64 = 1477314187;

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserInfo {
    open_id: String,
    nick_name: String,
}

/// Encrypts `plaintext` as WeChat does, for crafting bad plaintexts.
fn wechat_encrypt(plaintext: &[u8]) -> String {
    let key: [u8; 16] = STANDARD.decode(SESSION_KEY).unwrap().try_into().unwrap();
    let iv: [u8; 16] = STANDARD.decode(IV).unwrap().try_into().unwrap();
    let ct = cbc::Encryptor::<aes::Aes128>::new(&key.into(), &iv.into())
        .encrypt_padded_vec::<Pkcs7>(plaintext);
    STANDARD.encode(ct)
}

#[test]
fn the_official_demo_vector_decrypts() {
    let value = WechatDecryptor::new(APPID)
        .decrypt(SESSION_KEY, ENCRYPTED, IV)
        .unwrap();
    assert_eq!(value["openId"], "oGZUI0egBJY1zhBYw2KhdUfwVJJE");
    assert_eq!(value["nickName"], "Band");
    assert_eq!(value["watermark"]["timestamp"], STAMP);
    assert_eq!(value["watermark"]["appid"], APPID);

    let typed: UserInfo = WechatDecryptor::new(APPID)
        .decrypt_as(SESSION_KEY, ENCRYPTED, IV)
        .unwrap();
    assert_eq!(typed.open_id, "oGZUI0egBJY1zhBYw2KhdUfwVJJE");
    assert_eq!(typed.nick_name, "Band");
}

#[test]
fn watermark_age_is_enforced_when_configured() {
    let decryptor = WechatDecryptor::new(APPID).max_age(std::time::Duration::from_secs(3600));
    let fresh: serde_json::Value = decryptor
        .decrypt_at(SESSION_KEY, ENCRYPTED, IV, STAMP + 600)
        .unwrap();
    assert_eq!(fresh["nickName"], "Band");
    let old = decryptor.decrypt_at::<serde_json::Value>(SESSION_KEY, ENCRYPTED, IV, STAMP + 7200);
    assert_eq!(old.unwrap_err(), WechatDecryptError::Expired);
}

fn decrypt(key: &str, data: &str, iv: &str) -> WechatDecryptError {
    WechatDecryptor::new(APPID)
        .decrypt(key, data, iv)
        .unwrap_err()
}

/// Each failure has its own error in Rust; over HTTP, everything after the shape
/// checks answers `stale_session_key` (anything finer would be a padding oracle).
#[test]
fn each_bad_input_has_its_own_error_and_no_oracle_over_http() {
    let cases = [
        (decrypt("not base64!", ENCRYPTED, IV), "invalid_base64"),
        (decrypt(SESSION_KEY, "%%%", IV), "invalid_base64"),
        (decrypt(SESSION_KEY, ENCRYPTED, "r7B"), "invalid_base64"),
        (
            decrypt("AAAAAAAAAAA=", ENCRYPTED, IV),
            "invalid_session_key",
        ),
        (
            decrypt(SESSION_KEY, ENCRYPTED, "AAAAAAAAAAA="),
            "invalid_iv",
        ),
        (decrypt(SESSION_KEY, "AAAA", IV), "stale_session_key"),
        (
            decrypt(SESSION_KEY, &ENCRYPTED[..ENCRYPTED.len() - 24], IV),
            "stale_session_key",
        ),
        (
            decrypt(SESSION_KEY, &wechat_encrypt(&[0xff, 0xfe, 0x00]), IV),
            "plaintext_not_utf8",
        ),
        (
            decrypt(SESSION_KEY, &wechat_encrypt(b"{not json"), IV),
            "plaintext_not_json",
        ),
        (
            decrypt(SESSION_KEY, &wechat_encrypt(br#"{"openId":"x"}"#), IV),
            "missing_watermark",
        ),
    ];
    for (err, code) in cases {
        assert_eq!(err.code(), code, "{err:?}");
        let http = weapp::Error::from(err.clone());
        assert_eq!(http.status_code().as_u16(), 400);
        let shape = ["invalid_base64", "invalid_session_key", "invalid_iv"];
        let expected = if shape.contains(&code) {
            code
        } else {
            "stale_session_key"
        };
        assert_eq!(http.code(), expected, "{err:?}");
        let message = err.to_string();
        assert!(
            !message.contains(SESSION_KEY) && !message.contains("tiihtNczf5v6"),
            "{message}"
        );
    }
    let err = WechatDecryptor::new("wx0000000000000000")
        .decrypt(SESSION_KEY, ENCRYPTED, IV)
        .unwrap_err();
    assert_eq!(err, WechatDecryptError::AppidMismatch);
}

#[test]
fn a_wrong_session_key_is_reported_as_stale_not_as_garbage() {
    // 64 different keys: each either fails padding or yields non-JSON; none "succeeds".
    for n in 0u8..64 {
        let key = STANDARD.encode([n; 16]);
        let err = decrypt(&key, ENCRYPTED, IV);
        assert!(
            matches!(
                err,
                WechatDecryptError::DecryptFailed
                    | WechatDecryptError::NotUtf8
                    | WechatDecryptError::NotJson
            ),
            "{err:?}"
        );
    }
}

proptest::proptest! {
    #[test]
    fn random_input_never_panics(data in ".{0,200}", iv in ".{0,40}", key in ".{0,40}") {
        let _ = WechatDecryptor::new(APPID).decrypt(&key, &data, &iv);
    }

    #[test]
    fn random_ciphertext_bytes_give_an_error(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
        let result = WechatDecryptor::new(APPID).decrypt(SESSION_KEY, &STANDARD.encode(&bytes), IV);
        proptest::prop_assert!(result.is_err());
    }
}
