//! How far event delivery is behind the order path, counted every
//! `order.outbox.sweep_interval_ms` by a task of its own: the outbox's pending
//! events (every instance's: the count is the table's) plus, with the Redis relay,
//! the slowest consumer group's unread and unacknowledged entries. Exported as
//! `order_events_behind`; past `order.outbox.max_behind` new orders are refused
//! with 429 `events_behind` rather than letting the lag grow without bound.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, Ordering};

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use prometheus::IntGauge;
use weapp::AppContext;
use weapp::db::Db;
use weapp::with_conn;

use crate::error::OrderError;
use crate::schema::order_outbox as outbox;

/// The last count of events not handled yet (0 until the first count).
#[derive(Debug, Default)]
pub(crate) struct Backlog {
    behind: AtomicI64,
}

impl Backlog {
    /// Events not handled yet at the last count.
    pub(crate) fn behind(&self) -> i64 {
        AtomicI64::load(&self.behind, Ordering::Relaxed)
    }

    /// Counts the events not handled yet and keeps the figure; returns it.
    pub(crate) async fn refresh(&self, db: &Db, ctx: &AppContext) -> Result<i64, OrderError> {
        let mut conn = db.conn().await?;
        let pending: i64 = with_conn!(conn, |c| {
            outbox::table
                .filter(outbox::state.eq(weapp::queue::PENDING))
                .count()
                .get_result(c)
                .await
        })?;
        drop(conn);
        let relayed = match ctx.events().relay() {
            // A relay that cannot answer leaves the outbox's figure: the order path
            // is not refused for Redis being briefly away.
            Some(relay) => relay
                .standings()
                .await
                .map(|groups| {
                    groups
                        .iter()
                        .map(|g| g.pending + g.lag.unwrap_or(0))
                        .max()
                        .unwrap_or(0)
                })
                .unwrap_or(0),
            None => 0,
        };
        let behind = pending.saturating_add(i64::try_from(relayed).unwrap_or(i64::MAX));
        self.behind.store(behind, Ordering::Relaxed);
        gauge().set(behind);
        Ok(behind)
    }
}

/// `order_events_behind`, registered on first use.
fn gauge() -> &'static IntGauge {
    static GAUGE: OnceLock<IntGauge> = OnceLock::new();
    GAUGE.get_or_init(|| {
        let gauge = IntGauge::new(
            "order_events_behind",
            "Events not handled yet: the order outbox's pending rows plus the slowest relay group's unread and unacknowledged entries.",
        )
        .expect("valid metric");
        // Registration fails only for a duplicate name, which cannot happen here.
        let _ = prometheus::default_registry().register(Box::new(gauge.clone()));
        gauge
    })
}
