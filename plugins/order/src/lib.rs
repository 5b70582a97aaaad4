//! `weapp-order`: products, stock, idempotent orders, payment notifications, and the
//! events they cause.
//!
//! Routes (JSON): `GET /api/products`, `GET /api/products/{id}` (public);
//! `POST /api/orders` (with `Idempotency-Key`), `GET /api/orders`,
//! `GET /api/orders/{id}`, `POST /api/orders/{id}/cancel` (authenticated);
//! `POST /api/pay/notify` (signed by the payment provider, see [`payment`]);
//! `/api/admin/products` (operators: add, change, put on or off sale, set stock).
//! `app order seed <file.json>` adds the products of a file that the catalogue lacks.
//!
//! Correctness rests on three rules: stock is taken with a conditional update in the
//! order's transaction ([`placing`], by the strategy `placement` chose for the
//! database); every state change locks the order and checks its
//! `version` ([`transitions`]); side effects go through the [`outbox`] and are published
//! on the app's event bus (`order.created`, `order.paid`, `order.cancelled`,
//! `payment.anomaly`) only after commit.
//!
//! An app enables the plugin by linking it: `use weapp_order as _;`.

pub mod catalog;
pub mod config;
pub mod error;
pub mod events;
mod gate;
pub mod idempotency;
pub mod model;
pub mod outbox;
pub mod payment;
mod placement;
pub mod placing;
mod privacy;
mod routes;
mod rows;
mod schema;
mod service;
mod statements;
pub mod transitions;
mod views;

use weapp::actix_web::web;
use weapp::{AppContext, BackgroundTask, Plugin};

pub use config::OrderConfig;
pub use error::OrderError;
pub use model::{CatalogEntry, NewProduct, OrderStatus, ProductChange, StockChange};
pub use service::Orders;

/// The order plugin; registered with the app at compile time.
pub struct OrderPlugin;

weapp::register_plugin!(OrderPlugin);

const MIGRATIONS: &[weapp::db::Migration] = &[
    weapp::migration!("0001_create_order_tables"),
    weapp::migration!("0002_index_pending_outbox_events"),
];

/// Unpaid orders cancelled per sweep at most.
const EXPIRY_BATCH: i64 = 200;

#[weapp::async_trait::async_trait]
impl Plugin for OrderPlugin {
    fn name(&self) -> &'static str {
        "order"
    }

    fn dependencies(&self) -> &'static [&'static str] {
        &["auth"]
    }

    fn routes(&self, cfg: &mut web::ServiceConfig) {
        routes::configure(cfg);
    }

    fn migrations(&self) -> &'static [weapp::db::Migration] {
        MIGRATIONS
    }

    async fn on_start(&self, ctx: &AppContext) -> weapp::Result<()> {
        let config = (*ctx.config().get::<OrderConfig>()?).clone();
        if config.payment.secret.is_empty() {
            tracing::warn!("order.payment.secret is not set; /api/pay/notify answers 503");
        }
        let orders = Orders::new(config, ctx.db().clone());
        tracing::info!(strategy = orders.placement_strategy(), "order placement");
        ctx.insert(orders);
        Ok(())
    }

    async fn export_user(
        &self,
        ctx: &AppContext,
        user_id: i64,
    ) -> weapp::Result<Option<serde_json::Value>> {
        let Some(orders) = ctx.get::<Orders>() else {
            return Ok(None);
        };
        let list = orders.export_user(user_id).await?;
        Ok(Some(serde_json::json!({ "orders": list })))
    }

    async fn erase_user(&self, ctx: &AppContext, user_id: i64) -> weapp::Result<()> {
        if let Some(orders) = ctx.get::<Orders>() {
            let anonymised = orders.erase_user(user_id).await?;
            tracing::info!(anonymised, "orders anonymised for an erased user");
        }
        Ok(())
    }

    fn commands(&self) -> &'static [(&'static str, &'static str)] {
        &[(
            "seed",
            "<file.json>: add the products of a JSON list ({name, description, price_fen, \
             stock}) whose names the catalogue lacks",
        )]
    }

    async fn command(&self, ctx: &AppContext, args: &[String]) -> weapp::Result<()> {
        match args {
            [command, file] if command == "seed" => seed(ctx, file).await,
            _ => Err(weapp::Error::internal(
                "usage: order seed <file.json> (a JSON list of products)",
            )),
        }
    }

    fn background_tasks(&self, _ctx: &AppContext) -> Vec<BackgroundTask> {
        vec![
            BackgroundTask::new("order-outbox", run_outbox),
            BackgroundTask::new("order-expiry", run_expiry),
        ]
    }
}

/// `order seed <file>`: the file's products that the catalogue lacks, added.
async fn seed(ctx: &AppContext, file: &str) -> weapp::Result<()> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| weapp::Error::internal(format!("cannot read {file}: {e}")))?;
    let products: Vec<NewProduct> = serde_json::from_str(&text).map_err(|e| {
        weapp::Error::internal(format!(
            "{file} is not a JSON list of products ({{name, description, price_fen, stock}}): {e}"
        ))
    })?;
    let config = (*ctx.config().get::<OrderConfig>()?).clone();
    let orders = Orders::new(config, ctx.db().clone());
    let added = orders.seed_products(&products).await.map_err(|e| match e {
        OrderError::InvalidProduct(message) => weapp::Error::internal(format!("{file}: {message}")),
        e => weapp::Error::internal(format!(
            "seeding failed: {e} (has the database been migrated? run `migrate` first)"
        )),
    })?;
    for product in &added {
        println!("added product {}: {}", product.id, product.name);
    }
    println!(
        "{} of {} product(s) added; the others were in the catalogue already",
        added.len(),
        products.len()
    );
    Ok(())
}

/// Delivers the outbox's events until shutdown.
async fn run_outbox(ctx: AppContext, shutdown: weapp::Shutdown) {
    if let Some(orders) = ctx.get::<Orders>() {
        outbox::worker::run_worker(&orders.outbox, &ctx, shutdown).await;
    }
}

/// Cancels unpaid orders past their time and forgets old idempotency keys and
/// finished outbox events.
async fn run_expiry(ctx: AppContext, shutdown: weapp::Shutdown) {
    let Some(orders) = ctx.get::<Orders>() else {
        return;
    };
    let interval = std::time::Duration::from_millis(orders.config().expiry_interval_ms);
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            _ = tokio::time::sleep(interval) => {}
        }
        let now = model::now_ms();
        match orders.expire_unpaid(now, EXPIRY_BATCH).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(cancelled = n, "unpaid orders cancelled"),
            Err(e) => tracing::warn!(error = %e, "expiring unpaid orders failed"),
        }
        if let Err(e) = orders.purge_idempotency_keys(now).await {
            tracing::warn!(error = %e, "purging idempotency keys failed");
        }
        if let Err(e) = orders.purge_outbox(now).await {
            tracing::warn!(error = %e, "purging finished outbox events failed");
        }
    }
}
