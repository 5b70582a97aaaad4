//! `Sealed<T, C>`: plaintext in Rust, ciphertext in the database.
//!
//! ```
//! use weapp::crypto::Sealed;
//!
//! weapp::sealed_column!(pub UserPhone => "users"."phone");
//!
//! let phone: Sealed<String, UserPhone> = Sealed::new("13812348000".to_owned());
//! assert_eq!(format!("{phone:?}"), "***");
//! assert_eq!(phone.expose(), "13812348000");
//! ```
//!
//! The column's SQL type is `Binary` (`bytea`, `VARBINARY`/`BLOB`, `BLOB`). Values are
//! sealed on write and opened on read with the process-wide [`FieldCrypto`]
//! (installed by the app), bound to the table and column named by `C`.
//!

use std::io::Write;
use std::marker::PhantomData;
use std::sync::{Arc, RwLock};

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

/// A value stored encrypted in column `C`. `Debug` prints `***`; read it with
/// [`Sealed::expose`].
#[derive(Clone, PartialEq, Eq, AsExpression, FromSqlRow)]
#[diesel(sql_type = Binary)]
pub struct Sealed<T: SealedValue, C: SealedColumn> {
    value: T,
    column: PhantomData<C>,
}

impl<T: SealedValue, C: SealedColumn> Sealed<T, C> {
    /// Wraps a plaintext value.
    pub fn new(value: T) -> Self {
        Sealed {
            value,
            column: PhantomData,
        }
    }

    /// The plaintext. Do not log it.
    pub fn expose(&self) -> &T {
        &self.value
    }

    /// The plaintext, by value.
    pub fn into_inner(self) -> T {
        self.value
    }

    fn sealed_bytes(&self) -> Result<Vec<u8>, FieldError> {
        Ok(installed()?.seal(&self.value.to_plain(), &C::CONTEXT))
    }
}

impl<T: SealedValue, C: SealedColumn> std::fmt::Debug for Sealed<T, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl<T: SealedValue, C: SealedColumn> ToSql<Binary, diesel::pg::Pg> for Sealed<T, C> {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, diesel::pg::Pg>) -> serialize::Result {
        out.write_all(&self.sealed_bytes()?)?;
        Ok(IsNull::No)
    }
}

impl<T: SealedValue, C: SealedColumn> ToSql<Binary, diesel::mysql::Mysql> for Sealed<T, C> {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, diesel::mysql::Mysql>) -> serialize::Result {
        out.write_all(&self.sealed_bytes()?)?;
        Ok(IsNull::No)
    }
}

impl<T: SealedValue, C: SealedColumn> ToSql<Binary, diesel::sqlite::Sqlite> for Sealed<T, C> {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, diesel::sqlite::Sqlite>) -> serialize::Result {
        out.set_value(self.sealed_bytes()?);
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
        let raw = <Vec<u8> as FromSql<Binary, DB>>::from_sql(bytes)?;
        let plain = installed()?.open(&raw, &C::CONTEXT)?;
        let value = T::from_plain(&plain).ok_or(FieldError::WrongType(T::KIND))?;
        Ok(Sealed::new(value))
    }
}

// diesel's ToSql/FromSql have no context argument, so `Sealed` finds the keys here.
// The app installs its FieldCrypto at start-up; every app in one process shares it.
static INSTALLED: RwLock<Option<Arc<FieldCrypto>>> = RwLock::new(None);

/// Makes `crypto` the one [`Sealed`] columns use in this process.
pub fn install(crypto: Arc<FieldCrypto>) {
    *INSTALLED.write().unwrap_or_else(|p| p.into_inner()) = Some(crypto);
}

/// The process-wide field crypto, if an app installed one.
pub fn installed() -> Result<Arc<FieldCrypto>, FieldError> {
    INSTALLED
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .ok_or(FieldError::NotConfigured)
}
