//! `Sealed<T, C>`: a value sealed for its column, opened with the app's key ring.
//!
//! ```
//! use weapp::crypto::{BlindIndexer, FieldCrypto, KeyRing, Sealed};
//!
//! weapp::sealed_column!(pub UserPhone => "users"."phone");
//!
//! # let keys = vec![(1, zeroize::Zeroizing::new(vec![7u8; 16]))];
//! # let crypto = FieldCrypto::new(KeyRing::new(keys, 1)?, BlindIndexer::new(&[9u8; 32]).unwrap());
//! // `crypto` is the app's: `ctx.crypto()?`.
//! let phone: Sealed<String, UserPhone> = Sealed::seal(&crypto, &"13812348000".to_owned());
//! assert_eq!(format!("{phone:?}"), "***");
//! assert_eq!(phone.open(&crypto)?, "13812348000");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The column's SQL type is `Binary` (`bytea`, `VARBINARY`/`BLOB`, `BLOB`). A value
//! is sealed and opened with the app's [`FieldCrypto`], bound to the table and column
//! named by `C`, so a ciphertext copied to another column does not open there.

use std::io::Write;
use std::marker::PhantomData;

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::Binary;
use zeroize::Zeroizing;

pub use weapp_crypto::FieldContext;
use weapp_crypto::{FieldCrypto, FieldError};

/// Names the table and column a sealed type belongs to; declare with
/// [`sealed_column!`](crate::sealed_column).
pub trait SealedColumn {
    /// The column's context, bound into every value's associated data.
    const CONTEXT: FieldContext;
}

/// Declares a [`SealedColumn`] marker: `weapp::sealed_column!(pub UserPhone => "users"."phone");`
#[macro_export]
macro_rules! sealed_column {
    ($vis:vis $name:ident => $table:literal . $column:literal) => {
        #[doc = concat!("Marks values sealed for `", $table, ".", $column, "`.")]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis struct $name;
        impl $crate::db::sealed::SealedColumn for $name {
            const CONTEXT: $crate::db::sealed::FieldContext =
                $crate::db::sealed::FieldContext::new($table, $column);
        }
    };
}

/// A Rust type that can be sealed.
pub trait SealedValue: Sized {
    /// Name for error messages.
    const KIND: &'static str;
    /// The bytes to encrypt.
    fn to_plain(&self) -> Zeroizing<Vec<u8>>;
    /// Rebuilds the value from decrypted bytes.
    fn from_plain(bytes: &[u8]) -> Option<Self>;
}

impl SealedValue for String {
    const KIND: &'static str = "string";
    fn to_plain(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.as_bytes().to_vec())
    }
    fn from_plain(bytes: &[u8]) -> Option<Self> {
        String::from_utf8(bytes.to_vec()).ok()
    }
}

impl SealedValue for Vec<u8> {
    const KIND: &'static str = "byte string";
    fn to_plain(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.clone())
    }
    fn from_plain(bytes: &[u8]) -> Option<Self> {
        Some(bytes.to_vec())
    }
}

impl SealedValue for i64 {
    const KIND: &'static str = "integer";
    fn to_plain(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.to_be_bytes().to_vec())
    }
    fn from_plain(bytes: &[u8]) -> Option<Self> {
        Some(i64::from_be_bytes(bytes.try_into().ok()?))
    }
}

/// A value of type `T` sealed for column `C`: the ciphertext, as stored.
///
/// Sealing and opening take the app's [`FieldCrypto`] (`ctx.crypto()?`) explicitly:
/// diesel's `ToSql`/`FromSql` have no context argument, and a key ring found anywhere
/// but in the app would be one per process, so two apps in one process (tests, a
/// migration tool beside a server) could not hold different keys.
#[derive(Clone, PartialEq, Eq, AsExpression, FromSqlRow)]
#[diesel(sql_type = Binary)]
pub struct Sealed<T: SealedValue, C: SealedColumn> {
    ciphertext: Vec<u8>,
    marker: PhantomData<fn() -> (T, C)>,
}

impl<T: SealedValue, C: SealedColumn> Sealed<T, C> {
    /// Seals `value` for column `C` under the active key.
    pub fn seal(crypto: &FieldCrypto, value: &T) -> Self {
        Sealed {
            ciphertext: crypto.seal(&value.to_plain(), &C::CONTEXT),
            marker: PhantomData,
        }
    }

    /// Opens the value; fails if no key of `crypto` opens it, or if it was sealed
    /// for another column.
    pub fn open(&self, crypto: &FieldCrypto) -> Result<T, FieldError> {
        let plain = crypto.open(&self.ciphertext, &C::CONTEXT)?;
        T::from_plain(&plain).ok_or(FieldError::WrongType(T::KIND))
    }

    /// The stored bytes.
    pub fn ciphertext(&self) -> &[u8] {
        &self.ciphertext
    }
}

impl<T: SealedValue, C: SealedColumn> std::fmt::Debug for Sealed<T, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl<T: SealedValue, C: SealedColumn> ToSql<Binary, diesel::pg::Pg> for Sealed<T, C> {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, diesel::pg::Pg>) -> serialize::Result {
        out.write_all(&self.ciphertext)?;
        Ok(IsNull::No)
    }
}

impl<T: SealedValue, C: SealedColumn> ToSql<Binary, diesel::mysql::Mysql> for Sealed<T, C> {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, diesel::mysql::Mysql>) -> serialize::Result {
        out.write_all(&self.ciphertext)?;
        Ok(IsNull::No)
    }
}

impl<T: SealedValue, C: SealedColumn> ToSql<Binary, diesel::sqlite::Sqlite> for Sealed<T, C> {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, diesel::sqlite::Sqlite>) -> serialize::Result {
        out.set_value(self.ciphertext.clone());
        Ok(IsNull::No)
    }
}

impl<T, C, DB> FromSql<Binary, DB> for Sealed<T, C>
where
    T: SealedValue,
    C: SealedColumn,
    DB: Backend,
    Vec<u8>: FromSql<Binary, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        Ok(Sealed {
            ciphertext: <Vec<u8> as FromSql<Binary, DB>>::from_sql(bytes)?,
            marker: PhantomData,
        })
    }
}
