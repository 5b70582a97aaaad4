//! `weapp-order`: products, stock, idempotent orders paid with WeChat Pay, and the
//! events they cause.
//!
//! Routes (JSON): `GET /api/products`, `GET /api/products/{id}` (public);
//! `POST /api/orders` (with `Idempotency-Key`), `GET /api/orders`,
//! `GET /api/orders/{id}`, `POST /api/orders/{id}/cancel`,
//! `POST /api/orders/{id}/pay` (authenticated; the `wx.requestPayment` parameters,
//! see [`payment`]); `/api/admin/products` (operators: add, change, put on or off
//! sale, set stock) and `POST /api/admin/orders/{id}/refund`. Payment and refund
//! notifications arrive through the pay plugin (`weapp-pay`), which hands them to
//! this plugin's [`payment::Checkout`].
//! `app order seed <file.json>` adds the products of a file that the catalogue lacks.
//!
//! A product put on flash sale (`PUT /api/admin/products/{id}/flash-sale`) has its
//! orders reserved in Redis and written in batches instead ([`flash`]).
//!
//! Correctness rests on three rules: stock is taken with a conditional update in the
//! order's transaction ([`placing`], by the strategy `placement` chose for the
//! database); every state change locks the order and checks its
//! `version` ([`transitions`]); side effects go through the [`outbox`] and are published
//! on the app's event bus (`order.created`, `order.paid`, `order.cancelled`,
//! `order.refund_requested`, `order.refunded`, `payment.anomaly`) only after commit.
//!
//! An app enables the plugin by linking it: `use weapp_order as _;`.

pub mod catalog;
pub mod config;
pub mod error;
pub mod events;
pub mod flash;
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
use weapp::events::TypedEvent;
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
    weapp::migration!("0003_add_wechat_pay_columns"),
    weapp::migration!("0004_create_flash_sales"),
];

/// Tells the buyer's open sockets (on any instance) that the order is paid, as
/// `{"type":"push","topic":"order.paid","data":{order_id, user_id, total_fen}}`.
/// Failing (Redis down) fails the handler, so the event is delivered again.
async fn push_paid(ctx: &AppContext, paid: &events::Paid) -> weapp::Result<()> {
    match (ctx.get::<weapp::realtime::Relay>(), paid.user_id) {
        (Some(relay), Some(user_id)) => {
            relay.push_to_user(user_id, events::Paid::TOPIC, paid).await
        }
        _ => Ok(()),
    }
}

/// Unpaid orders cancelled per sweep at most.
const EXPIRY_BATCH: i64 = 200;

#[weapp::async_trait::async_trait]
impl Plugin for OrderPlugin {
    fn name(&self) -> &'static str {
        "order"
    }

    fn dependencies(&self) -> &'static [&'static str] {
        &["auth", "pay"]
    }

    fn routes(&self, cfg: &mut web::ServiceConfig) {
        routes::configure(cfg);
    }

    fn migrations(&self) -> &'static [weapp::db::Migration] {
        MIGRATIONS
    }

    async fn on_start(&self, ctx: &AppContext) -> weapp::Result<()> {
        let config = (*ctx.config().get::<OrderConfig>()?).clone();
        let orders = with_flash_sales(ctx, Orders::new(config, ctx.db().clone())).await?;
        tracing::info!(strategy = orders.placement_strategy(), "order placement");
        ctx.insert(orders);
        // The outbox's topics (crate::events), published as shared events.
        for prefix in ["order.", "payment.", "catalog."] {
            ctx.events().share_topics(prefix);
        }
        ctx.events()
            .on::<events::Paid, _, _>("order-push", |ctx, paid| async move {
                push_paid(&ctx, &paid.event).await
            });
        install_checkout(ctx)
    }

    async fn export_user(
        &self,
        ctx: &AppContext,
        user_id: i64,
    ) -> weapp::Result<Option<serde_json::Value>> {
        let Some(orders) = ctx.get::<Orders>() else {
            return Ok(None);
        };
        let list = orders
            .export_user(user_id, ctx.read_from(user_id).await)
            .await?;
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
            BackgroundTask::new("order-outbox-backlog", run_backlog_counter),
            BackgroundTask::new("order-expiry", run_expiry),
            BackgroundTask::new("order-reconcile", run_reconcile),
            BackgroundTask::new("order-flash-writer", run_flash_writer),
            BackgroundTask::new("order-flash-upkeep", run_flash_upkeep),
        ]
    }
}

/// Flash sales where the app can run them (PostgreSQL and Redis). Elsewhere a
/// running sale stops the start: its orders would silently go the ordinary way.
async fn with_flash_sales(ctx: &AppContext, orders: Orders) -> weapp::Result<Orders> {
    let client = ctx.get::<weapp::kv::RedisClient>();
    if let (weapp::db::Backend::Postgres, Some(client)) = (ctx.db().backend(), client) {
        let config = orders.config();
        let sales = flash::FlashSales::new(
            ctx.db().clone(),
            client.connection()?,
            client.key_prefix(),
            config.flash_sale.clone(),
            config.unpaid_timeout_s,
        );
        if let Err(e) = sales.refresh().await {
            tracing::warn!(error = %e, "reading the flash sales failed; retried in the background");
        }
        return Ok(orders.with_flash_sales(sales));
    }
    match flash::any_running(ctx.db()).await {
        Ok(false) => Ok(orders),
        Ok(true) => Err(config_error(
            "order.flash_sale",
            "a product is on flash sale, which needs PostgreSQL (database.url) and Redis \
             (redis.url): configure both, or end the sale \
             (DELETE /api/admin/products/{id}/flash-sale) where they are",
        )),
        Err(e) => {
            tracing::warn!(error = %e, "could not check for flash sales (not migrated yet?)");
            Ok(orders)
        }
    }
}

/// Pays orders to the merchant `order.pay.merchant` names (or the only one), and
/// takes that merchant's notifications. Without a merchant, paying answers 503.
fn install_checkout(ctx: &AppContext) -> weapp::Result<()> {
    let (Some(orders), Some(payments)) = (ctx.get::<Orders>(), ctx.get::<weapp_pay::Payments>())
    else {
        return Ok(());
    };
    let wanted = &orders.config().pay.merchant;
    let merchant = if wanted.is_empty() {
        let mut all = payments.merchants();
        match (all.next(), all.next()) {
            (Some(only), None) => only.clone(),
            (None, _) => {
                tracing::warn!("no WeChat Pay merchant (pay.merchants); orders cannot be paid");
                return Ok(());
            }
            (Some(_), Some(_)) => {
                return Err(config_error(
                    "order.pay.merchant",
                    "several pay.merchants are configured: name the one orders are paid to",
                ));
            }
        }
    } else {
        payments.merchant(wanted).cloned().ok_or_else(|| {
            config_error("order.pay.merchant", "names no merchant of pay.merchants")
        })?
    };
    tracing::info!(merchant = %merchant.name, "orders are paid with WeChat Pay");
    ctx.insert(payment::Checkout::new(
        ctx,
        orders,
        payments.clone(),
        merchant,
    ));
    let checkout = ctx.get::<payment::Checkout>().expect("inserted just now");
    if !payments.set_sink(checkout) {
        return Err(weapp::Error::internal(
            "another plugin already takes WeChat Pay notifications",
        ));
    }
    Ok(())
}

fn config_error(key: &str, reason: &str) -> weapp::Error {
    weapp::config::ConfigError::Invalid(vec![weapp::config::ConfigIssue::new(key, reason)]).into()
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

/// Counts the events not handled yet (`order_events_behind`, the order bound).
async fn run_backlog_counter(ctx: AppContext, shutdown: weapp::Shutdown) {
    if let Some(orders) = ctx.get::<Orders>() {
        outbox::worker::run_backlog_counter(&orders.outbox, &ctx, shutdown).await;
    }
}

/// Writes flash-sale reservations to the database until shutdown.
async fn run_flash_writer(ctx: AppContext, shutdown: weapp::Shutdown) {
    if let Some(orders) = ctx.get::<Orders>()
        && let Some(flash) = &orders.flash
    {
        flash::run_writer(flash, &orders.outbox, &shutdown).await;
    }
}

/// Keeps the flash sales and their Redis counters current until shutdown.
async fn run_flash_upkeep(ctx: AppContext, shutdown: weapp::Shutdown) {
    if let Some(orders) = ctx.get::<Orders>()
        && let Some(flash) = &orders.flash
    {
        flash::run_upkeep(flash, &shutdown).await;
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
        if let Some(checkout) = ctx.get::<payment::Checkout>()
            && let Err(e) = checkout.release_due_prepays(now, EXPIRY_BATCH).await
        {
            tracing::warn!(error = %e, "closing the prepays of expired orders failed");
        }
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

/// Looks up pending orders with an old prepay at WeChat Pay, so a lost
/// notification does not leave a paid order pending.
async fn run_reconcile(ctx: AppContext, shutdown: weapp::Shutdown) {
    let Some(checkout) = ctx.get::<payment::Checkout>() else {
        return;
    };
    let Some(orders) = ctx.get::<Orders>() else {
        return;
    };
    let interval = std::time::Duration::from_millis(orders.config().pay.reconcile_interval_ms);
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            _ = tokio::time::sleep(interval) => {}
        }
        match checkout.reconcile(model::now_ms()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(paid = n, "payments found by reconciliation"),
            Err(e) => tracing::warn!(error = %e, "reconciliation failed"),
        }
    }
}
