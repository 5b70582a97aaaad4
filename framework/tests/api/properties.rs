//! Property tests of what parses hostile input: push bodies and signatures, WeChat's
//! `encryptedData`, bearer tokens and JWTs, and the request-signing canonical
//! string. CI runs proptest's default number of cases; a long run sets
//! `PROPTEST_CASES` (e.g. `PROPTEST_CASES=2000000 cargo nextest run -E 'test(properties)'`).

use std::collections::BTreeMap;

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockModeEncrypt, KeyIvInit};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;
use weapp::actix_web::http::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use weapp::auth::JwtKeys;
use weapp::auth::{JwtAlgorithm, JwtConfig};
use weapp::config::Secret;
use weapp::crypto::{WechatDecryptError, WechatDecryptor};
use weapp::guard::canonical_request;
use weapp::wechat::{PushCrypto, PushQuery};

const APPID: &str = "wx4f4bc4dec97d474b";
const SESSION_KEY: &str = "tiihtNczf5v6AKRyjwEUhQ==";
const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

fn jwt_keys() -> JwtKeys {
    let mut keys = BTreeMap::new();
    keys.insert(
        "k1".to_owned(),
        Secret::new("a-property-test-key-of-32-bytes-or-more"),
    );
    JwtKeys::new(&JwtConfig {
        algorithm: JwtAlgorithm::HS256,
        keys,
        ..JwtConfig::default()
    })
    .unwrap()
    .unwrap()
}

fn encrypt(plain: &[u8]) -> String {
    let key: [u8; 16] = STANDARD.decode(SESSION_KEY).unwrap().try_into().unwrap();
    let ct = cbc::Encryptor::<aes::Aes128>::new(&key.into(), &[7u8; 16].into())
        .encrypt_padded_vec::<Pkcs7>(plain);
    STANDARD.encode(ct)
}

proptest! {
    /// Any body and signature: an error or a message, never a panic; a forged
    /// signature never passes.
    #[test]
    fn push_bodies_and_signatures(
        body in proptest::collection::vec(any::<u8>(), 0..400),
        signature in "[0-9a-f]{0,48}",
        timestamp in "[0-9]{0,12}",
        nonce in ".{0,20}",
        encrypted in "[A-Za-z0-9+/=]{0,200}",
    ) {
        let crypto = PushCrypto::new("token", AES_KEY, APPID).unwrap().allow_plain(true);
        let query = PushQuery {
            signature: Some(signature.clone()),
            msg_signature: Some(signature.clone()),
            timestamp,
            nonce,
            ..PushQuery::default()
        };
        let _ = crypto.open_push(&query, &body);
        let xml = format!("<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>");
        prop_assert!(crypto.open_push(&query, xml.as_bytes()).is_err(), "a forged msg_signature passed");
    }

    /// Any `encryptedData` and iv: a typed error or data, never a panic. Data that
    /// is well padded under the key never fails as a stale key.
    #[test]
    fn wechat_decrypt(
        data in "[A-Za-z0-9+/=%]{0,120}",
        iv in "[A-Za-z0-9+/=]{0,30}",
        plain in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let decryptor = WechatDecryptor::new(APPID);
        let _ = decryptor.decrypt(SESSION_KEY, &data, &iv);
        let iv = STANDARD.encode([7u8; 16]);
        match decryptor.decrypt(SESSION_KEY, &encrypt(&plain), &iv) {
            Ok(_) => {}
            Err(e) => prop_assert!(
                !matches!(e, WechatDecryptError::DecryptFailed),
                "well-padded data reported as a stale key"
            ),
        }
    }

    /// Any `Authorization` header and any token: no panic, and nothing but a token
    /// this app signed verifies.
    #[test]
    fn bearer_headers_and_tokens(header in ".{0,200}", token in "[A-Za-z0-9._-]{0,300}") {
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(&header) {
            headers.insert(AUTHORIZATION, value);
            let _ = weapp::auth::bearer_token(&headers);
        }
        let keys = jwt_keys();
        prop_assert!(keys.verify(&token).is_err());
        let (issued, _) = keys.issue(42, "session").unwrap();
        let claims = keys.verify(&issued).unwrap();
        prop_assert_eq!(claims.sub, "42");
        // One character changed anywhere: refused.
        let at = token.len() % issued.len();
        let mut tampered = issued.clone().into_bytes();
        tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        if tampered != issued {
            prop_assert!(keys.verify(&tampered).is_err());
        }
    }

    /// The canonical string is the same for the same request however its query is
    /// ordered, and differs when any signed part differs.
    #[test]
    fn request_signing_canonical_string(
        method in "(GET|POST|DELETE)",
        path in "/[a-z0-9/%]{0,30}",
        query in proptest::collection::vec("[a-z]{1,4}=[a-z0-9]{0,4}", 0..5),
        timestamp in "[0-9]{1,12}",
        nonce in "[a-zA-Z0-9]{1,16}",
        body in proptest::collection::vec(any::<u8>(), 0..64),
        other in "[a-z0-9]{1,8}",
    ) {
        let joined = query.join("&");
        let mut reversed = query.clone();
        reversed.reverse();
        let canonical = canonical_request(&method, &path, &joined, &timestamp, &nonce, &body);
        prop_assert_eq!(
            &canonical,
            &canonical_request(&method, &path, &reversed.join("&"), &timestamp, &nonce, &body)
        );
        let changed = [
            canonical_request(&method, &format!("{path}/{other}"), &joined, &timestamp, &nonce, &body),
            canonical_request(&method, &path, &format!("{joined}&z{other}=1"), &timestamp, &nonce, &body),
            canonical_request(&method, &path, &joined, &format!("{timestamp}1"), &nonce, &body),
            canonical_request(&method, &path, &joined, &timestamp, &format!("{nonce}{other}"), &body),
            canonical_request(&method, &path, &joined, &timestamp, &nonce, &[body.clone(), vec![0]].concat()),
        ];
        for variant in changed {
            prop_assert_ne!(&canonical, &variant);
        }
    }
}
