//! Pool construction per backend.

use std::time::Duration;

use diesel::ConnectionError;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod, SetupCallback,
};
use diesel_async::{AsyncConnection, SimpleAsyncConnection};
use futures_util::FutureExt;

use super::DatabaseConfig;
use super::{AsyncMysqlConnection, AsyncPgConnection, DbError, Pool, SqliteConn};

/// Settings shared by every backend's pool.
fn builder<M: bb8::ManageConnection>(config: &DatabaseConfig, max_size: u32) -> bb8::Builder<M> {
    bb8::Pool::builder()
        .max_size(max_size)
        .min_idle((config.min_idle > 0).then_some(config.min_idle.min(max_size)))
        .connection_timeout(Duration::from_millis(config.connect_timeout_ms))
        .max_lifetime(
            (config.max_lifetime_s > 0).then(|| Duration::from_secs(config.max_lifetime_s)),
        )
}

/// Checking a connection out does not cost a `SELECT 1` round trip (diesel-async's
/// default): broken connections are still detected, and a query on a connection that
/// died since fails with a clear error instead.
fn fast<C: diesel_async::pooled_connection::PoolableConnection + 'static>() -> ManagerConfig<C> {
    let mut config = ManagerConfig::default();
    config.recycling_method = RecyclingMethod::Fast;
    config
}

/// Opens a connection and runs `sql` on it (session settings) before the pool
/// hands it out.
fn setup_with<C>(sql: String) -> SetupCallback<C>
where
    C: AsyncConnection + SimpleAsyncConnection + 'static,
{
    let sql: std::sync::Arc<str> = sql.into();
    Box::new(move |url: &str| {
        let (url, sql) = (url.to_owned(), sql.clone());
        async move {
            let mut conn = C::establish(&url).await?;
            conn.batch_execute(&sql)
                .await
                .map_err(ConnectionError::CouldntSetupConfiguration)?;
            Ok(conn)
        }
        .boxed()
    })
}

/// What a pool's connections run, which decides how PostgreSQL plans their prepared
/// statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Workload {
    /// Request handlers: short statements by key, where the cached generic plan is
    /// right and planning each run would be wasted work.
    Requests,
    /// Background batches (outbox, audit chaining, message queue, retention) over
    /// tables that grow from empty: a generic plan made while a table was small
    /// keeps scanning it whole, long after an index would win, until the next
    /// ANALYZE. These connections plan each run with its actual arguments and
    /// the table's current size (`plan_cache_mode = force_custom_plan`); statements
    /// are still parsed once.
    Background,
}

pub(super) fn postgres(
    config: &DatabaseConfig,
    max_size: u32,
    workload: Workload,
) -> Pool<AsyncPgConnection> {
    let mut manager_config = fast::<AsyncPgConnection>();
    if workload == Workload::Background {
        manager_config.custom_setup =
            setup_with::<AsyncPgConnection>("SET plan_cache_mode = force_custom_plan".to_owned());
    }
    let manager =
        AsyncDieselConnectionManager::new_with_config(config.url.expose(), manager_config);
    builder(config, max_size).build_unchecked(manager)
}

pub(super) fn mysql(config: &DatabaseConfig, max_size: u32) -> Pool<AsyncMysqlConnection> {
    // diesel-async's MySQL driver only knows the `mysql://` scheme.
    let url = config.url.expose();
    let url = match url.split_once("://") {
        Some((_, rest)) => format!("mysql://{rest}"),
        None => url.to_owned(),
    };
    let manager = AsyncDieselConnectionManager::new_with_config(url, fast());
    builder(config, max_size).build_unchecked(manager)
}

/// SQLite: creates the file's folder, and sets per-connection pragmas: WAL so readers
/// do not block the writer, a busy timeout instead of instant `SQLITE_BUSY`, and
/// foreign keys on. An in-memory database lives per connection, so its pool has one.
pub(super) fn sqlite(config: &DatabaseConfig) -> Result<Pool<SqliteConn>, DbError> {
    let url = config.url.expose();
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url)
        .to_owned();
    let in_memory = path == ":memory:" || path.is_empty();
    let path = if in_memory {
        ":memory:".to_owned()
    } else {
        path
    };
    if !in_memory
        && let Some(dir) = std::path::Path::new(&path).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|e| {
            DbError::Config(format!(
                "cannot create folder {} for SQLite: {e}",
                dir.display()
            ))
        })?;
    }
    let busy_timeout_ms = config.connect_timeout_ms;
    let mut manager_config = fast::<SqliteConn>();
    manager_config.custom_setup = setup_with::<SqliteConn>(format!(
        "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = {busy_timeout_ms}; \
         PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;"
    ));
    let manager = AsyncDieselConnectionManager::new_with_config(path, manager_config);
    if in_memory {
        // The database dies with its only connection: never recycle it.
        return Ok(builder(config, 1)
            .max_lifetime(None)
            .idle_timeout(None)
            .build_unchecked(manager));
    }
    Ok(builder(config, config.max_connections).build_unchecked(manager))
}
