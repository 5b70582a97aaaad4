//! Read replicas: pools for `database.replica_urls`, their measured lag, and the
//! choice of where a read-only query runs.
//!
//! Neither diesel-async nor bb8 routes reads, so [`Db`](super::Db) keeps one pool
//! per replica beside the primary's. [`Db::watch_replicas`](super::Db::watch_replicas)
//! measures each replica's replication lag every `database.replica_check_interval_ms`;
//! a replica is used only while its last measurement said it streams from the
//! primary and lags at most `database.max_replica_lag_ms`. Until its first
//! measurement, after a failed one, or when none is usable, reads go to the primary:
//! a replica only ever takes load off, it never serves what the primary would not.
//!
//! Read-your-writes: the `db` module's docs.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Nullable};

use super::{DbConn, DbError, DbPool};

/// Where a read-only query runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom {
    /// The primary: the caller must see the latest writes (their own, or any).
    Primary,
    /// A usable replica if there is one, else the primary: the caller accepts data
    /// up to `database.max_replica_lag_ms` old.
    Replica,
}

/// One replica's standing, for metrics and health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaStanding {
    /// The replica's URL without its password.
    pub name: String,
    /// Replication lag at the last check; `None` if the check failed or the
    /// replica does not stream from a primary.
    pub lag_ms: Option<i64>,
    /// Whether reads go to it now.
    pub usable: bool,
}

pub(super) struct Replica {
    pub(super) pool: DbPool,
    name: String,
    /// Lag at the last check in ms, `-1` when unknown.
    lag_ms: AtomicI64,
    usable: AtomicBool,
    /// Whether its being unusable was logged since it last was usable.
    reported: AtomicBool,
}

/// Every configured replica, and which one the next read takes.
pub(super) struct Replicas {
    members: Vec<Replica>,
    next: AtomicUsize,
    max_lag_ms: i64,
}

impl Replicas {
    pub(super) fn new(pools: Vec<(String, DbPool)>, max_lag_ms: u64) -> Replicas {
        Replicas {
            members: pools
                .into_iter()
                .map(|(name, pool)| Replica {
                    pool,
                    name,
                    lag_ms: AtomicI64::new(-1),
                    usable: AtomicBool::new(false),
                    reported: AtomicBool::new(false),
                })
                .collect(),
            next: AtomicUsize::new(0),
            max_lag_ms: i64::try_from(max_lag_ms).unwrap_or(i64::MAX),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub(super) fn members(&self) -> &[Replica] {
        &self.members
    }

    /// The next usable replica, round robin.
    pub(super) fn pick(&self) -> Option<&Replica> {
        let count = self.members.len();
        if count == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..count)
            .map(|i| &self.members[(start + i) % count])
            .find(|r| r.usable.load(Ordering::Relaxed))
    }

    pub(super) fn standings(&self) -> Vec<ReplicaStanding> {
        self.members
            .iter()
            .map(|r| {
                let lag = r.lag_ms.load(Ordering::Relaxed);
                ReplicaStanding {
                    name: r.name.clone(),
                    lag_ms: (lag >= 0).then_some(lag),
                    usable: r.usable.load(Ordering::Relaxed),
                }
            })
            .collect()
    }

    /// Records a check's outcome; a change of standing is logged, with why, once
    /// (not at every check while a replica stays unusable).
    pub(super) fn record(&self, replica: &Replica, measured: Result<Lag, DbError>) {
        let (lag, why_not) = match measured {
            Ok(Lag::Streaming(ms)) if ms <= self.max_lag_ms => (ms, None),
            Ok(Lag::Streaming(ms)) => (ms, Some(format!("lagging {ms} ms"))),
            Ok(Lag::Unknown) => (-1, Some("nothing replayed yet: lag unknown".to_owned())),
            Ok(Lag::NotStreaming) => (-1, Some("not streaming from its primary".to_owned())),
            Ok(Lag::IsPrimary) => (-1, Some("not a replica (not in recovery)".to_owned())),
            Err(e) => (-1, Some(format!("check failed: {e}"))),
        };
        let usable = why_not.is_none();
        let was = replica.usable.swap(usable, Ordering::Relaxed);
        replica.lag_ms.store(lag, Ordering::Relaxed);
        match why_not {
            Some(why) if !replica.reported.swap(true, Ordering::Relaxed) => {
                tracing::warn!(replica = %replica.name, reason = %why, "read replica not used; reads go to the primary");
            }
            None if !was => {
                replica.reported.store(false, Ordering::Relaxed);
                tracing::info!(replica = %replica.name, lag_ms = lag, "read replica in use");
            }
            _ => {}
        }
    }

    /// A checkout from `replica` failed: reads leave it until its next good check.
    pub(super) fn checkout_failed(&self, replica: &Replica, error: &DbError) {
        tracing::warn!(replica = %replica.name, error = %error, "read replica unavailable; reads go to the primary");
        replica.usable.store(false, Ordering::Relaxed);
        replica.reported.store(true, Ordering::Relaxed);
    }
}

impl Replica {
    /// Measures the replica's lag, within `timeout`.
    pub(super) async fn measure(&self, timeout: Duration) -> Result<Lag, DbError> {
        use diesel_async::RunQueryDsl;
        let check = async {
            let mut conn = self.pool.checkout().await?;
            let DbConn::Postgres(c) = &mut conn else {
                return Err(DbError::Config(
                    "read replicas are supported on PostgreSQL only".into(),
                ));
            };
            let row: LagRow = diesel::sql_query(LAG_SQL).get_result(&mut **c).await?;
            Ok(match (row.in_recovery, row.streaming, row.lag_ms) {
                (false, _, _) => Lag::IsPrimary,
                (true, false, _) => Lag::NotStreaming,
                (true, true, Some(ms)) => Lag::Streaming(ms.max(0)),
                (true, true, None) => Lag::Unknown,
            })
        };
        tokio::time::timeout(timeout, check)
            .await
            .map_err(|_| DbError::Unavailable(format!("no answer within {timeout:?}")))?
    }
}

/// What a replica check found.
pub(super) enum Lag {
    /// Streaming, this many ms behind.
    Streaming(i64),
    /// Streaming, but nothing replayed since the replica started: lag unknown.
    Unknown,
    /// In recovery, with no WAL receiver streaming (cut off from the primary, so
    /// however current its replay looks, it may miss everything since).
    NotStreaming,
    /// Not a replica at all.
    IsPrimary,
}

/// Lag is 0 when everything received is replayed (an idle primary sends nothing,
/// so the last replayed transaction's age would grow without any lag), else the age
/// of the last replayed transaction.
const LAG_SQL: &str = "SELECT pg_is_in_recovery() AS in_recovery, \
     COALESCE((SELECT status = 'streaming' FROM pg_stat_wal_receiver LIMIT 1), false) AS streaming, \
     CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0::bigint \
          ELSE (EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp()) * 1000)::bigint \
     END AS lag_ms";

#[derive(QueryableByName)]
struct LagRow {
    #[diesel(sql_type = Bool)]
    in_recovery: bool,
    #[diesel(sql_type = Bool)]
    streaming: bool,
    #[diesel(sql_type = Nullable<BigInt>)]
    lag_ms: Option<i64>,
}
