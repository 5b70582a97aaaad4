//! Reading what older backends stored: SM4-ECB and SM4-CBC with PKCS#7. Decryption
//! only, for migrating data into sealed fields; these modes are unauthenticated (and
//! ECB leaks equal blocks), so weapp never writes them.

use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockModeDecrypt, KeyInit, KeyIvInit};
use zeroize::Zeroizing;

/// Legacy ciphertext could not be decrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LegacyError {
    /// Key or iv is not 16 bytes.
    #[error("SM4 keys and ivs are 16 bytes")]
    Length,
    /// Wrong key, wrong mode, or corrupted data.
    #[error("legacy ciphertext could not be decrypted")]
    Decrypt,
}

/// Decrypts SM4-ECB with PKCS#7 padding.
pub fn decrypt_sm4_ecb(key: &[u8], ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, LegacyError> {
    let dec = ecb::Decryptor::<sm4::Sm4>::new_from_slice(key).map_err(|_| LegacyError::Length)?;
    dec.decrypt_padded_vec::<Pkcs7>(ciphertext)
        .map(Zeroizing::new)
        .map_err(|_| LegacyError::Decrypt)
}

/// Decrypts SM4-CBC with PKCS#7 padding.
pub fn decrypt_sm4_cbc(
    key: &[u8],
    iv: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, LegacyError> {
    let dec =
        cbc::Decryptor::<sm4::Sm4>::new_from_slices(key, iv).map_err(|_| LegacyError::Length)?;
    dec.decrypt_padded_vec::<Pkcs7>(ciphertext)
        .map(Zeroizing::new)
        .map_err(|_| LegacyError::Decrypt)
}
