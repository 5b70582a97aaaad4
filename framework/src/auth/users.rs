//! The framework-owned `users` table: personal fields sealed, looked up by blind index.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::sealed::{Sealed, SealedColumn};
use crate::db::{Db, DbError};
use crate::with_conn;
use weapp_crypto::{FieldCrypto, FieldError, normalize_id, normalize_phone};

/// Why a user's personal data could not be read.
#[derive(Debug, thiserror::Error)]
pub enum UserDataError {
    /// No connection, or a statement failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A sealed field did not open with the app's key ring.
    #[error(transparent)]
    Field(#[from] FieldError),
}

impl From<UserDataError> for crate::Error {
    fn from(e: UserDataError) -> Self {
        match e {
            UserDataError::Db(e) => e.into(),
            UserDataError::Field(e) => e.into(),
        }
    }
}

diesel::table! {
    /// Users of the mini program.
    users (id) {
        /// Primary key.
        id -> BigInt,
        /// Sealed openid.
        openid -> Binary,
        /// Blind index of the openid.
        openid_index -> Binary,
        /// Sealed unionid.
        unionid -> Nullable<Binary>,
        /// Blind index of the unionid.
        unionid_index -> Nullable<Binary>,
        /// Sealed phone number.
        phone -> Nullable<Binary>,
        /// Blind index of the phone number.
        phone_index -> Nullable<Binary>,
        /// Nickname from the profile.
        nickname -> Nullable<Text>,
        /// Avatar URL from the profile.
        avatar_url -> Nullable<Text>,
        /// Unix milliseconds.
        created_at -> BigInt,
        /// Unix milliseconds.
        updated_at -> BigInt,
    }
}

crate::sealed_column!(pub UserOpenid => "users"."openid");
crate::sealed_column!(pub UserUnionid => "users"."unionid");
crate::sealed_column!(pub UserPhone => "users"."phone");

/// What `/api/me` shows of a user.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserRow {
    /// Id.
    pub id: i64,
    /// Nickname.
    pub nickname: Option<String>,
    /// Avatar URL.
    pub avatar_url: Option<String>,
    /// Phone number, sealed: open it with `ctx.crypto()?`.
    pub phone: Option<Sealed<String, UserPhone>>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The id of the user with this openid, creating the user on first login.
pub async fn upsert_by_openid(
    db: &Db,
    crypto: &FieldCrypto,
    openid: &str,
    unionid: Option<&str>,
) -> Result<i64, DbError> {
    if let Some(id) = id_by_openid(db, crypto, openid).await? {
        return Ok(id);
    }
    let index = crypto
        .blind_index(&UserOpenid::CONTEXT, &normalize_id(openid))
        .to_vec();
    let mut conn = db.conn().await?;
    let now = now_ms();
    let unionid_index = unionid.map(|u| {
        crypto
            .blind_index(&UserUnionid::CONTEXT, &normalize_id(u))
            .to_vec()
    });
    let inserted =
        with_conn!(conn, |c| {
            diesel::insert_into(users::table)
                .values((
                    users::openid.eq(Sealed::<String, UserOpenid>::seal(
                        crypto,
                        &openid.to_owned(),
                    )),
                    users::openid_index.eq(&index),
                    users::unionid
                        .eq(unionid
                            .map(|u| Sealed::<String, UserUnionid>::seal(crypto, &u.to_owned()))),
                    users::unionid_index.eq(&unionid_index),
                    users::created_at.eq(now),
                    users::updated_at.eq(now),
                ))
                .execute(c)
                .await
        });
    // A concurrent first login may have inserted the same openid: the unique index
    // rejects ours, and the row is read back either way.
    if let Err(e) = inserted
        && !matches!(
            e,
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            )
        )
    {
        return Err(e.into());
    }
    drop(conn);
    id_by_openid(db, crypto, openid)
        .await?
        .ok_or(DbError::Query(diesel::result::Error::NotFound))
}

/// A user by id.
pub async fn find(db: &Db, id: i64) -> Result<Option<UserRow>, DbError> {
    let mut conn = db.conn().await?;
    Ok(with_conn!(conn, |c| {
        users::table
            .find(id)
            .select(UserRow::as_select())
            .first(c)
            .await
            .optional()
    })?)
}

/// Stores nickname and avatar from a decrypted profile.
pub async fn update_profile(
    db: &Db,
    id: i64,
    nickname: Option<&str>,
    avatar_url: Option<&str>,
) -> Result<(), DbError> {
    let mut conn = db.conn().await?;
    with_conn!(conn, |c| {
        diesel::update(users::table.find(id))
            .set((
                users::nickname.eq(nickname),
                users::avatar_url.eq(avatar_url),
                users::updated_at.eq(now_ms()),
            ))
            .execute(c)
            .await
    })?;
    Ok(())
}

/// Stores the phone number sealed, with its blind index.
pub async fn set_phone(db: &Db, crypto: &FieldCrypto, id: i64, phone: &str) -> Result<(), DbError> {
    let index = crypto
        .blind_index(&UserPhone::CONTEXT, &normalize_phone(phone))
        .to_vec();
    let mut conn = db.conn().await?;
    with_conn!(conn, |c| {
        diesel::update(users::table.find(id))
            .set((
                users::phone.eq(Some(Sealed::<String, UserPhone>::seal(
                    crypto,
                    &phone.to_owned(),
                ))),
                users::phone_index.eq(Some(&index)),
                users::updated_at.eq(now_ms()),
            ))
            .execute(c)
            .await
    })?;
    Ok(())
}

/// Everything the `users` table holds about one user; open the sealed fields with
/// `ctx.crypto()?`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserExport {
    /// Id.
    pub id: i64,
    /// WeChat openid.
    pub openid: Sealed<String, UserOpenid>,
    /// WeChat unionid.
    pub unionid: Option<Sealed<String, UserUnionid>>,
    /// Phone number.
    pub phone: Option<Sealed<String, UserPhone>>,
    /// Nickname.
    pub nickname: Option<String>,
    /// Avatar URL.
    pub avatar_url: Option<String>,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// The user's whole row.
pub async fn export(db: &Db, id: i64) -> Result<Option<UserExport>, DbError> {
    let mut conn = db.conn().await?;
    Ok(with_conn!(conn, |c| {
        users::table
            .find(id)
            .select(UserExport::as_select())
            .first(c)
            .await
            .optional()
    })?)
}

/// Erases the user's personal fields: unionid, phone, nickname and avatar become
/// `NULL` with their blind indexes; the openid (a required column) is replaced by a
/// sealed tombstone whose blind index no login can produce, so the row can no longer
/// be tied to the person while the id stays valid for anonymised records.
pub async fn erase(db: &Db, crypto: &FieldCrypto, id: i64) -> Result<bool, DbError> {
    let tombstone = format!("erased:{id}:{}", uuid::Uuid::new_v4().simple());
    let index = crypto
        .blind_index(&UserOpenid::CONTEXT, &tombstone)
        .to_vec();
    let mut conn = db.conn().await?;
    let rows = with_conn!(conn, |c| {
        diesel::update(users::table.find(id))
            .set((
                users::openid.eq(Sealed::<String, UserOpenid>::seal(crypto, &tombstone)),
                users::openid_index.eq(&index),
                users::unionid.eq(None::<Sealed<String, UserUnionid>>),
                users::unionid_index.eq(None::<Vec<u8>>),
                users::phone.eq(None::<Sealed<String, UserPhone>>),
                users::phone_index.eq(None::<Vec<u8>>),
                users::nickname.eq(None::<String>),
                users::avatar_url.eq(None::<String>),
                users::updated_at.eq(now_ms()),
            ))
            .execute(c)
            .await
    })?;
    Ok(rows == 1)
}

/// The openid of a user (decrypted), e.g. to address a subscribe message.
pub async fn openid_of(
    db: &Db,
    crypto: &FieldCrypto,
    id: i64,
) -> Result<Option<String>, UserDataError> {
    let mut conn = db.conn().await?;
    let sealed: Option<Sealed<String, UserOpenid>> = with_conn!(conn, |c| {
        users::table
            .find(id)
            .select(users::openid)
            .first(c)
            .await
            .optional()
    })
    .map_err(DbError::Query)?;
    Ok(sealed.map(|s| s.open(crypto)).transpose()?)
}

/// The id of the user with this openid, if any (looked up by blind index).
pub async fn id_by_openid(
    db: &Db,
    crypto: &FieldCrypto,
    openid: &str,
) -> Result<Option<i64>, DbError> {
    let index = crypto
        .blind_index(&UserOpenid::CONTEXT, &normalize_id(openid))
        .to_vec();
    let mut conn = db.conn().await?;
    Ok(with_conn!(conn, |c| {
        users::table
            .filter(users::openid_index.eq(&index))
            .select(users::id)
            .first(c)
            .await
            .optional()
    })?)
}
