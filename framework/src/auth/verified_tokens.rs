//! Access tokens this instance has already verified, so a client that sends the
//! same token many times a second (a flash sale's buyers) pays for its signature
//! and claims once.
//!
//! An entry is kept only after jsonwebtoken verified the token with this instance's
//! keys, which are fixed for the instance's life (a key change needs a restart), and
//! it is found only by the token's SHA-256 digest, compared in constant time: a
//! token that differs in one byte is verified afresh, and a lookup does not tell
//! how much of a forged token matches a kept one. The digest, not the token, is
//! kept: a tenth of the memory. `exp` and `nbf` are checked again on every use, as
//! verification would, so a kept token expires on time. Whether its session still
//! lives is not this cache's business: that is checked after it, as before.

use std::hash::{BuildHasher, RandomState};

use sha2::{Digest, Sha256};

use super::Claims;
use super::sharded_map::ShardedMap;

/// Longer tokens are always verified: weapp's are a few hundred bytes, and a
/// lookup should cost a small fraction of a verification.
const MAX_TOKEN_BYTES: usize = 2048;

/// A token's SHA-256 digest.
type TokenDigest = [u8; 32];

/// What a kept token carried; `iss` and `aud` are not kept, as verification
/// required them to be the configured ones.
struct Verified {
    digest: TokenDigest,
    sub: Box<str>,
    sid: Box<str>,
    iat: u64,
    nbf: u64,
    exp: u64,
}

/// Verified tokens by a keyed hash of their digest. Two tokens with one hash
/// share a slot: the later one is kept.
pub(crate) struct VerifiedTokens<S = RandomState> {
    tokens: ShardedMap<Verified>,
    /// Randomly keyed per instance, so a client cannot aim tokens at one shard.
    hasher: S,
}

/// Whether `a` and `b` are the same digest, taking as long for any two.
fn same(a: &TokenDigest, b: &TokenDigest) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn digest(token: &str) -> TokenDigest {
    Sha256::digest(token.as_bytes()).into()
}

/// Whether a token with these times is usable at `now_s`: the checks
/// verification makes (jsonwebtoken's, with the same leeway).
fn in_time(nbf: u64, exp: u64, now_s: u64, leeway_s: u64) -> bool {
    exp >= now_s.saturating_sub(leeway_s) && nbf <= now_s.saturating_add(leeway_s)
}

impl VerifiedTokens {
    /// A cache of at most `capacity` tokens; `None` for 0 (every use verifies).
    pub(crate) fn new(capacity: usize) -> Option<VerifiedTokens> {
        VerifiedTokens::with_hasher(capacity, RandomState::new())
    }
}

impl<S: BuildHasher> VerifiedTokens<S> {
    fn with_hasher(capacity: usize, hasher: S) -> Option<VerifiedTokens<S>> {
        (capacity > 0).then(|| VerifiedTokens {
            tokens: ShardedMap::new(capacity),
            hasher,
        })
    }

    /// The slot of `digest`.
    fn slot(&self, digest: &TokenDigest) -> i64 {
        self.hasher.hash_one(digest) as i64
    }

    /// The claims of `token` if it was verified here and is in time at `now_s`;
    /// `iss` and `aud` are filled in by the caller's configuration.
    pub(crate) fn get(
        &self,
        token: &str,
        now_s: u64,
        leeway_s: u64,
        (iss, aud): (&str, &str),
    ) -> Option<Claims> {
        if token.len() > MAX_TOKEN_BYTES {
            return None;
        }
        let digest = digest(token);
        let slot = self.slot(&digest);
        let mut shard = self.tokens.shard(slot);
        let kept = shard
            .get(&slot)
            .filter(|kept| same(&kept.digest, &digest))?;
        if !in_time(kept.nbf, kept.exp, now_s, leeway_s) {
            // Verification refuses it now, and will say why.
            shard.remove(&slot);
            return None;
        }
        Some(Claims {
            sub: kept.sub.as_ref().into(),
            sid: kept.sid.as_ref().into(),
            iat: kept.iat,
            nbf: kept.nbf,
            exp: kept.exp,
            iss: iss.into(),
            aud: aud.into(),
        })
    }

    /// Keeps `token`, which was just verified and carried `claims`. A full shard
    /// drops what is out of time at `now_s`, then everything if that was not
    /// enough: a miss only costs a verification.
    pub(crate) fn insert(&self, token: &str, claims: &Claims, now_s: u64, leeway_s: u64) {
        if token.len() > MAX_TOKEN_BYTES {
            return;
        }
        let digest = digest(token);
        let slot = self.slot(&digest);
        let mut shard = self.tokens.shard(slot);
        self.tokens.make_room(&mut shard, slot, |kept| {
            in_time(kept.nbf, kept.exp, now_s, leeway_s)
        });
        shard.insert(
            slot,
            Verified {
                digest,
                sub: claims.sub.as_str().into(),
                sid: claims.sid.as_str().into(),
                iat: claims.iat,
                nbf: claims.nbf,
                exp: claims.exp,
            },
        );
    }

    /// How many tokens are kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.tokens.each_shard().map(|shard| shard.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIGURED: (&str, &str) = ("weapp", "weapp-miniprogram");

    fn claims(exp: u64) -> Claims {
        Claims {
            sub: "42".into(),
            sid: "s-1".into(),
            iat: 1_000,
            nbf: 1_000,
            exp,
            iss: CONFIGURED.0.into(),
            aud: CONFIGURED.1.into(),
        }
    }

    #[test]
    fn a_kept_token_is_found_only_by_its_exact_string_and_while_in_time() {
        let cache = VerifiedTokens::new(100).unwrap();
        cache.insert("aaa.bbb.ccc", &claims(2_000), 1_500, 30);
        assert_eq!(
            cache.get("aaa.bbb.ccc", 1_500, 30, CONFIGURED),
            Some(claims(2_000))
        );
        for other in [
            "aaa.bbb.ccd",
            "aaa.bbb.cc",
            "aaa.bbb.cccc",
            "",
            "baa.bbb.ccc",
        ] {
            assert_eq!(cache.get(other, 1_500, 30, CONFIGURED), None, "{other}");
        }
        // Within the leeway after exp, then not, and forgotten.
        assert!(cache.get("aaa.bbb.ccc", 2_030, 30, CONFIGURED).is_some());
        assert_eq!(cache.get("aaa.bbb.ccc", 2_031, 30, CONFIGURED), None);
        assert_eq!(cache.len(), 0);
        // A clock that went back before nbf (beyond the leeway) refuses it too.
        cache.insert("aaa.bbb.ccc", &claims(2_000), 1_500, 30);
        assert_eq!(cache.get("aaa.bbb.ccc", 969, 30, CONFIGURED), None);
    }

    #[test]
    fn the_cache_holds_no_more_than_its_capacity() {
        let cache = VerifiedTokens::new(32).unwrap();
        for i in 0..1_000 {
            cache.insert(&format!("token-{i}"), &claims(2_000), 1_500, 30);
            assert!(cache.len() <= 32, "{} kept after {i}", cache.len());
        }
        // The last one is always kept.
        assert!(cache.get("token-999", 1_500, 30, CONFIGURED).is_some());
    }

    #[test]
    fn overlong_tokens_are_not_kept_and_zero_capacity_is_off() {
        let cache = VerifiedTokens::new(100).unwrap();
        let long = "x".repeat(MAX_TOKEN_BYTES + 1);
        cache.insert(&long, &claims(2_000), 1_500, 30);
        assert_eq!(cache.len(), 0);
        assert_eq!(cache.get(&long, 1_500, 30, CONFIGURED), None);
        assert!(VerifiedTokens::new(0).is_none());
    }

    /// Every token hashes alike, so each lookup meets the kept token.
    #[derive(Default)]
    struct Colliding;
    impl std::hash::Hasher for Colliding {
        fn finish(&self) -> u64 {
            7
        }
        fn write(&mut self, _: &[u8]) {}
    }

    #[test]
    fn a_token_with_the_hash_of_a_kept_one_is_not_taken_for_it() {
        let cache =
            VerifiedTokens::with_hasher(100, std::hash::BuildHasherDefault::<Colliding>::default())
                .unwrap();
        cache.insert("aaa.bbb.ccc", &claims(2_000), 1_500, 30);
        for other in ["aaa.bbb.ccd", "aaa.bbb.cc", "Aaa.bbb.ccc", ""] {
            assert_eq!(cache.get(other, 1_500, 30, CONFIGURED), None, "{other}");
        }
        assert!(cache.get("aaa.bbb.ccc", 1_500, 30, CONFIGURED).is_some());
        // The later of two colliding tokens takes the slot.
        cache.insert("xxx.yyy.zzz", &claims(3_000), 1_500, 30);
        assert_eq!(cache.get("aaa.bbb.ccc", 1_500, 30, CONFIGURED), None);
        assert_eq!(
            cache.get("xxx.yyy.zzz", 1_500, 30, CONFIGURED),
            Some(claims(3_000))
        );
    }

    #[test]
    fn digests_compare_equal_only_when_identical() {
        let a = digest("abc");
        assert!(same(&a, &digest("abc")));
        for at in 0..32 {
            let mut b = a;
            b[at] ^= 1;
            assert!(!same(&a, &b), "byte {at}");
        }
    }
}
