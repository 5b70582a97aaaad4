//! `weapp-audit`: an append-only, tamper-evident audit log.
//!
//! Each row's hash (SM3) covers the previous row's hash and the row's own canonical
//! content ([`chain`] spells out the bytes), so editing, inserting or deleting a row
//! broken row. Rows carry no personal data in clear: a bus event's details keep
//! only the keys allowed for its topic ([`DETAIL_KEYS`]), and
//! [`record::PERSONAL_KEYS`] are redacted from whatever a plugin records itself.
//!
//! Other plugins record with [`record()`]; every event on the app's bus
//! ([`weapp::events`]) is recorded too (`order.*`, `payment.anomaly`, `auth.*`...),
//! once per event id.
//!
//! An app enables the plugin by linking it: `use weapp_audit as _;`.

mod append;
pub mod chain;
pub mod config;
pub mod record;
pub mod retention;
mod schema;
pub mod verify;

use std::sync::Arc;

use weapp::events::Event;
use weapp::{AppContext, BackgroundTask, Plugin};

pub use record::{AuditError, AuditEvent};
pub use verify::{Tampering, Verification};

/// The audit plugin; registered with the app at compile time.
pub struct AuditPlugin;

weapp::register_plugin!(AuditPlugin);

const MIGRATIONS: &[weapp::db::Migration] = &[
    weapp::migration!("0001_create_audit_log"),
    weapp::migration!("0002_create_audit_pending"),
];

/// Records an audit row; it joins the chain within `audit.chain_interval_ms` (or at
/// [`flush`]). Returns `false` if its event id was recorded before.
pub async fn record(ctx: &AppContext, event: AuditEvent) -> weapp::Result<bool> {
    Ok(record::append(ctx.db(), &event).await?)
}

/// Chains every recorded row now (before verifying or exporting, and in tests).
pub async fn flush(ctx: &AppContext) -> weapp::Result<usize> {
    Ok(record::chain_pending(ctx.db()).await?)
}

/// The payload keys an audit row keeps, by topic prefix (the first match applies),
/// besides those every topic keeps ([`ALWAYS_KEPT`]). An allow-list, not a list of
/// what to hide: a field a publisher adds later (a nickname, `avatarUrl`,
/// `phoneNumber`, a text push's `Content`) stays out of the append-only log until
/// it is listed here.
pub const DETAIL_KEYS: &[(&str, &[&str])] = &[
    (
        "payment.anomaly",
        &["order_status", "total_fen", "amount_fen"],
    ),
    ("order.", &["total_fen"]),
    (
        "catalog.",
        &["price_fen", "qty", "delta", "active", "changed"],
    ),
    ("request.rejected", &["route", "method", "field"]),
    ("wechat.push.", &["MsgType", "Event", "CreateTime", "List"]),
];

/// Keys kept for every topic: identifiers of the records concerned (`*_id`) and
/// short codes.
pub const ALWAYS_KEPT: &[&str] = &["reason", "status", "code", "admin"];

/// `payload` with only the keys allowed for `topic`.
fn allowed_details(topic: &str, payload: &serde_json::Value) -> serde_json::Value {
    let Some(fields) = payload.as_object() else {
        return serde_json::Value::Object(Default::default());
    };
    let extra = DETAIL_KEYS
        .iter()
        .find(|(prefix, _)| topic.starts_with(prefix))
        .map_or(&[][..], |(_, keys)| *keys);
    fields
        .iter()
        .filter(|(key, _)| {
            key.ends_with("_id")
                || ALWAYS_KEPT.contains(&key.as_str())
                || extra.contains(&key.as_str())
        })
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// The audit row for an event from the bus.
fn from_bus(event: &Event) -> AuditEvent {
    let payload = &event.payload;
    let user = payload["user_id"].as_i64().map(|id| format!("user:{id}"));
    let actor = match event.topic.as_str() {
        "order.paid" | "payment.anomaly" => "payment".to_owned(),
        "order.cancelled" if payload["reason"] == "timeout" => "system".to_owned(),
        _ => user.clone().unwrap_or_else(|| "system".to_owned()),
    };
    let target = match payload["order_id"].as_i64() {
        Some(order) => format!("order:{order}"),
        None => user.unwrap_or_else(|| event.topic.clone()),
    };
    let mut row = AuditEvent::new(actor, event.topic.clone(), target)
        .details(allowed_details(&event.topic, payload))
        .event_id(event.id.clone());
    if row.action.len() > 64 {
        row.action.truncate(64);
    }
    row
}

#[weapp::async_trait::async_trait]
impl Plugin for AuditPlugin {
    fn name(&self) -> &'static str {
        "audit"
    }

    fn migrations(&self) -> &'static [weapp::db::Migration] {
        MIGRATIONS
    }

    async fn on_start(&self, ctx: &AppContext) -> weapp::Result<()> {
        // Checked when the configuration loaded: a bad [audit] stops start-up.
        ctx.config().get::<config::AuditConfig>()?;
        // A single event is usually a request's own (a login): it is staged, so no
        // request waits for the chain lock. A batch comes from a queue worker (the
        // order outbox) and is chained at once, one lock and transaction for all.
        ctx.events()
            .subscribe_batch("audit", "*", |ctx, events: Vec<Arc<Event>>| async move {
                match events.as_slice() {
                    [event] => record(&ctx, from_bus(event)).await.map(drop),
                    events => {
                        let rows: Vec<AuditEvent> = events.iter().map(|e| from_bus(e)).collect();
                        Ok(record::chain_events(ctx.db(), &rows).await.map(drop)?)
                    }
                }
            });
        Ok(())
    }

    // The log is append-only and names users only by id; erasure leaves it as is
    // (the erasure itself is recorded), and export lists the rows about the user.
    async fn export_user(
        &self,
        ctx: &AppContext,
        user_id: i64,
    ) -> weapp::Result<Option<serde_json::Value>> {
        record::chain_pending(ctx.db()).await?;
        let rows = verify::rows_about(ctx.db(), &format!("user:{user_id}")).await?;
        Ok(Some(serde_json::json!({ "entries": rows })))
    }

    fn background_tasks(&self, _ctx: &AppContext) -> Vec<BackgroundTask> {
        vec![
            BackgroundTask::new("audit-chain", record::run_chainer),
            BackgroundTask::new("audit-retention", retention::run),
        ]
    }

    fn commands(&self) -> &'static [(&'static str, &'static str)] {
        &[(
            "verify",
            "Walk the audit chain and name the first tampered row, if any",
        )]
    }

    async fn command(&self, ctx: &AppContext, args: &[String]) -> weapp::Result<()> {
        match args.first().map(String::as_str) {
            Some("verify") => {
                record::chain_pending(ctx.db()).await?;
                let report = verify::verify(ctx.db()).await?;
                match report.tampering {
                    None => {
                        println!(
                            "audit log OK: {} row(s), head hash {}",
                            report.rows, report.head_hash
                        );
                        Ok(())
                    }
                    Some(tampering) => {
                        println!("audit log TAMPERED: {tampering}");
                        Err(weapp::Error::internal(format!(
                            "audit log verification failed: {tampering}"
                        )))
                    }
                }
            }
            other => Err(weapp::Error::internal(format!(
                "unknown audit command {:?}; try `audit verify`",
                other.unwrap_or("")
            ))),
        }
    }
}
