use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockCipherEncrypt, BlockModeEncrypt, KeyInit, KeyIvInit};
use proptest::prelude::*;
use weapp::crypto::legacy::{LegacyError, decrypt_sm4_cbc, decrypt_sm4_ecb};
use weapp::crypto::{BlindIndexer, FieldContext, FieldError, KeyRing, OVERHEAD, normalize_phone};
use zeroize::Zeroizing;

const PHONE: FieldContext = FieldContext::new("users", "phone");
const OPENID: FieldContext = FieldContext::new("users", "openid");

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn key(byte: u8, len: usize) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(vec![byte; len])
}

fn ring(keys: &[(u16, u8, usize)], active: u16) -> KeyRing {
    KeyRing::new(
        keys.iter()
            .map(|(id, b, len)| (*id, key(*b, *len)))
            .collect(),
        active,
    )
    .unwrap()
}

#[test]
fn sm4_block_matches_the_gbt_32907_vector() {
    let key = hex("0123456789abcdeffedcba9876543210");
    let cipher = sm4::Sm4::new_from_slice(&key).unwrap();
    let mut block = sm4::cipher::Array::try_from(key.as_slice()).unwrap();
    cipher.encrypt_block(&mut block);
    assert_eq!(block.as_slice(), hex("681edf34d206965e86b3e94f536e4246"));
}

#[test]
fn sealed_values_round_trip_with_either_algorithm() {
    for (len, alg_byte) in [(16, 0x01), (32, 0x02)] {
        let ring = ring(&[(7, 0x42, len)], 7);
        let sealed = ring.seal(b"13812348000", &PHONE);
        assert_eq!(sealed.len(), 11 + OVERHEAD);
        assert_eq!(
            &sealed[..4],
            &[0x01, alg_byte, 0x00, 0x07],
            "version, algorithm, key id"
        );
        assert!(!sealed.windows(11).any(|w| w == b"13812348000"));
        assert_eq!(
            ring.open(&sealed, &PHONE).unwrap().as_slice(),
            b"13812348000"
        );
        // Fresh nonce each time.
        assert_ne!(ring.seal(b"13812348000", &PHONE), sealed);
    }
}

#[test]
fn tampering_with_any_byte_is_detected() {
    let ring = ring(&[(1, 0x11, 16), (2, 0x22, 32)], 1);
    let sealed = ring.seal(b"oGZUI0egBJY1zhBYw2KhdUfwVJJE", &OPENID);
    for i in 0..sealed.len() {
        for flip in [0x01u8, 0x80] {
            let mut bad = sealed.clone();
            bad[i] ^= flip;
            assert!(
                ring.open(&bad, &OPENID).is_err(),
                "byte {i} flip {flip:#x} went unnoticed"
            );
        }
    }
}

#[test]
fn wrong_column_key_and_truncation_are_errors() {
    let ring1 = ring(&[(1, 0x11, 16)], 1);
    let sealed = ring1.seal(b"13812348000", &PHONE);
    assert_eq!(
        ring1.open(&sealed, &OPENID).unwrap_err(),
        FieldError::Tampered
    );
    assert_eq!(
        ring1
            .open(&sealed, &FieldContext::new("orders", "phone"))
            .unwrap_err(),
        FieldError::Tampered
    );
    let other = ring(&[(9, 0x11, 16)], 9);
    assert_eq!(
        other.open(&sealed, &PHONE).unwrap_err(),
        FieldError::UnknownKey(1)
    );
    let same_id_other_key = ring(&[(1, 0x99, 16)], 1);
    assert_eq!(
        same_id_other_key.open(&sealed, &PHONE).unwrap_err(),
        FieldError::Tampered
    );
    for cut in [0, 3, 16, OVERHEAD - 1] {
        assert_eq!(
            ring1.open(&sealed[..cut], &PHONE).unwrap_err(),
            FieldError::Truncated
        );
    }
    assert_eq!(
        ring1.open(&sealed[..sealed.len() - 1], &PHONE).unwrap_err(),
        FieldError::Tampered
    );
    let mut future = sealed.clone();
    future[0] = 0x02;
    assert_eq!(
        ring1.open(&future, &PHONE).unwrap_err(),
        FieldError::UnknownFormat
    );
}

#[test]
fn old_keys_still_open_and_reseal_moves_to_the_active_key() {
    let old = ring(&[(1, 0x11, 16)], 1);
    let sealed = old.seal(b"13812348000", &PHONE);
    let rotated = ring(&[(1, 0x11, 16), (2, 0x22, 32)], 2);
    assert_eq!(
        rotated.open(&sealed, &PHONE).unwrap().as_slice(),
        b"13812348000"
    );
    let resealed = rotated
        .reseal(&sealed, &PHONE)
        .unwrap()
        .expect("needs re-sealing");
    assert_eq!(KeyRing::key_id_of(&resealed).unwrap(), 2);
    assert_eq!(resealed[1], 0x02, "AES-256-GCM");
    assert_eq!(rotated.reseal(&resealed, &PHONE).unwrap(), None);
    assert_eq!(
        rotated.open(&resealed, &PHONE).unwrap().as_slice(),
        b"13812348000"
    );
}

#[test]
fn key_ring_construction_rejects_bad_keys() {
    assert!(KeyRing::new(vec![(1, key(1, 24))], 1).is_err());
    assert!(KeyRing::new(vec![(1, key(1, 16))], 2).is_err());
    assert!(KeyRing::new(vec![(1, key(1, 16)), (1, key(2, 16))], 1).is_err());
    assert!(!format!("{:?}", ring(&[(1, 0x5a, 16)], 1)).contains("5a"));
}

#[test]
fn blind_indexes_are_stable_normalized_and_column_bound() {
    let indexer = BlindIndexer::new(&[7u8; 32]).unwrap();
    let a = indexer.index(&PHONE, &normalize_phone("+86 138-1234-8000"));
    let b = indexer.index(&PHONE, &normalize_phone("13812348000"));
    assert_eq!(a, b);
    assert_eq!(normalize_phone("0086 (138) 1234 8000"), "13812348000");
    assert_ne!(
        a,
        indexer.index(&OPENID, "13812348000"),
        "column is part of the index"
    );
    let other = BlindIndexer::new(&[8u8; 32]).unwrap();
    assert_ne!(
        a,
        other.index(&PHONE, "13812348000"),
        "key is part of the index"
    );
    assert!(
        BlindIndexer::new(&[1u8; 8]).is_none(),
        "short keys are refused"
    );
}

#[test]
fn legacy_sm4_ecb_and_cbc_data_can_be_read() {
    let key = [0x33u8; 16];
    let iv = [0x44u8; 16];
    let ecb_ct = ecb::Encryptor::<sm4::Sm4>::new_from_slice(&key)
        .unwrap()
        .encrypt_padded_vec::<Pkcs7>(b"13812348000");
    assert_eq!(
        decrypt_sm4_ecb(&key, &ecb_ct).unwrap().as_slice(),
        b"13812348000"
    );
    let cbc_ct = cbc::Encryptor::<sm4::Sm4>::new_from_slices(&key, &iv)
        .unwrap()
        .encrypt_padded_vec::<Pkcs7>(b"oGZUI0egBJY1zhBYw2KhdUfwVJJE");
    assert_eq!(
        decrypt_sm4_cbc(&key, &iv, &cbc_ct).unwrap().as_slice(),
        b"oGZUI0egBJY1zhBYw2KhdUfwVJJE"
    );
    assert_eq!(
        decrypt_sm4_ecb(&[0u8; 5], &ecb_ct).unwrap_err(),
        LegacyError::Length
    );
    assert!(decrypt_sm4_cbc(&key, &iv, &cbc_ct[..15]).is_err());
}

proptest! {
    #[test]
    fn any_value_round_trips(plain in proptest::collection::vec(any::<u8>(), 0..512), aes in any::<bool>()) {
        let ring = ring(&[(3, 0x33, if aes { 32 } else { 16 })], 3);
        let sealed = ring.seal(&plain, &PHONE);
        prop_assert_eq!(sealed.len(), plain.len() + OVERHEAD);
        let opened = ring.open(&sealed, &PHONE).unwrap();
        prop_assert_eq!(opened.as_slice(), plain.as_slice());
    }

    #[test]
    fn random_bytes_never_open(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
        let ring = ring(&[(1, 0x11, 16)], 1);
        prop_assert!(ring.open(&bytes, &PHONE).is_err());
    }

    #[test]
    fn a_random_flip_is_detected(plain in proptest::collection::vec(any::<u8>(), 1..64), at in any::<usize>(), bit in 0u8..8) {
        let ring = ring(&[(1, 0x11, 16)], 1);
        let mut sealed = ring.seal(&plain, &PHONE);
        let i = at % sealed.len();
        sealed[i] ^= 1 << bit;
        prop_assert!(ring.open(&sealed, &PHONE).is_err());
    }
}
