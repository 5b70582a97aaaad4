//! Crypto benchmarks: `cargo bench -p weapp --bench crypto`.
//! Goal: SM4-GCM field encrypt + decrypt of a phone number ≤ 2 µs. Also what an
//! access token's check costs, verified or kept (`auth.jwt.verified_cache_entries`).

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use weapp::crypto::{BlindIndexer, FieldContext, KeyRing, WechatDecryptor, normalize_phone};
use zeroize::Zeroizing;

const PHONE: FieldContext = FieldContext::new("users", "phone");

fn ring(key_len: usize) -> KeyRing {
    KeyRing::new(vec![(1, Zeroizing::new(vec![0x42; key_len]))], 1).unwrap()
}

fn field(c: &mut Criterion) {
    for (name, len) in [("sm4-gcm", 16), ("aes-256-gcm", 32)] {
        let ring = ring(len);
        c.bench_function(&format!("{name} seal+open 11-digit phone"), |b| {
            b.iter(|| {
                let sealed = ring.seal(black_box(b"13812348000"), &PHONE);
                ring.open(black_box(&sealed), &PHONE).unwrap()
            })
        });
    }
    let indexer = BlindIndexer::new(&[7u8; 32]).unwrap();
    c.bench_function("blind index (HMAC-SM3) of a phone", |b| {
        b.iter(|| indexer.index(&PHONE, &normalize_phone(black_box("+86 138-1234-8000"))))
    });
}

fn wechat(c: &mut Criterion) {
    const ENCRYPTED: &str = "CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC+oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew==";
    let decryptor = WechatDecryptor::new("wx4f4bc4dec97d474b");
    c.bench_function("wechat encryptedData decrypt (demo vector)", |b| {
        b.iter(|| {
            decryptor
                .decrypt(
                    black_box("tiihtNczf5v6AKRyjwEUhQ=="),
                    black_box(ENCRYPTED),
                    black_box("r7BXXKkLb8qrSNn05n0qiA=="),
                )
                .unwrap()
        })
    });
}

fn tokens(c: &mut Criterion) {
    use weapp::auth::{JwtConfig, JwtKeys};
    use weapp::config::Secret;
    for (name, entries) in [("verified", 0), ("kept", 20_000)] {
        let keys = JwtKeys::new(&JwtConfig {
            keys: [("k1".to_owned(), Secret::new("k".repeat(32)))].into(),
            verified_cache_entries: entries,
            ..Default::default()
        })
        .unwrap()
        .unwrap();
        let (token, _) = keys.issue(42, "0123456789abcdef0123456789abcdef").unwrap();
        c.bench_function(&format!("access token check (HS256, {name})"), |b| {
            b.iter(|| keys.verify(black_box(&token)).unwrap())
        });
    }
}

criterion_group!(benches, field, wechat, tokens);
criterion_main!(benches);
