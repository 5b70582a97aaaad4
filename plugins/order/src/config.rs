//! The `[order]` config section.

use serde::{Deserialize, Serialize};
use weapp::config::{Config, ConfigIssue, ConfigSection};
use weapp::db::{Isolation, RetryPolicy};

/// Settings of the order plugin (`[order]`, env `WEAPP__ORDER__*`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrderConfig {
    /// An unpaid order is cancelled and restocked this long after it was placed.
    pub unpaid_timeout_s: u64,
    /// How often the expiry task looks for unpaid orders past their time.
    pub expiry_interval_ms: u64,
    /// How long `Idempotency-Key` responses are kept.
    pub idempotency_ttl_s: u64,
    /// Isolation of order transactions (`backend_default`, `read_committed`,
    /// `repeatable_read`, `serializable`).
    pub isolation: Isolation,
    /// Retries of transactions that hit a deadlock or serialization failure.
    pub retry: RetryPolicy,
    /// Most orders of one product writing at once, per instance (the rest wait in
    /// the app for their turn); `0` for no limit. See `StockGate` in the order
    /// plugin: a long queue on one stock row slows the database's hand-over. Applies
    /// to orders placed alone; batches are bounded by `group_commit.lanes`.
    pub stock_writers: usize,
    /// Most lines in one order.
    pub max_items: usize,
    /// Most units of one product in one order.
    pub max_qty: i64,
    /// Most unpaid orders one user may hold at once (`0`: no cap), so one account
    /// cannot hold the stock for the unpaid timeout.
    pub max_pending_orders: u32,
    /// Most units one user may hold in unpaid orders at once (`0`: no cap).
    pub max_pending_units: i64,
    /// Default and largest page sizes of list endpoints.
    pub page_size: i64,
    /// Largest `per_page` a client may ask for.
    pub max_page_size: i64,
    /// Paying orders with WeChat Pay (the pay plugin).
    pub pay: OrderPayConfig,
    /// The outbox worker.
    pub outbox: OutboxConfig,
    /// Orders placed at the same time sharing one transaction (PostgreSQL).
    pub group_commit: GroupCommitConfig,
    /// Products sold in flash-sale mode: units reserved in Redis, orders written in
    /// batches (PostgreSQL and Redis).
    pub flash_sale: FlashSaleConfig,
}

impl Default for OrderConfig {
    fn default() -> Self {
        OrderConfig {
            unpaid_timeout_s: 900,
            expiry_interval_ms: 10_000,
            idempotency_ttl_s: 86_400,
            isolation: Isolation::BackendDefault,
            retry: RetryPolicy::default(),
            stock_writers: 4,
            max_items: 50,
            max_qty: 1_000,
            max_pending_orders: 10,
            max_pending_units: 1_000,
            page_size: 20,
            max_page_size: 100,
            pay: OrderPayConfig::default(),
            outbox: OutboxConfig::default(),
            group_commit: GroupCommitConfig::default(),
            flash_sale: FlashSaleConfig::default(),
        }
    }
}

/// `[order.flash_sale]`: how flash-sale orders are reserved and written. Which
/// products are on flash sale is set at run time (`PUT /api/admin/products/{id}/flash-sale`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlashSaleConfig {
    /// Reservations of one product not yet written to the database past which new
    /// ones get 429 `flash_sale_busy` with `Retry-After`: the queue in Redis stays
    /// bounded when the database falls behind.
    pub max_queued: i64,
    /// Most reservations written in one transaction.
    pub batch_size: usize,
    /// How long the writer waits for reservations when none are queued.
    pub poll_interval_ms: u64,
    /// How often the Redis counters are checked against the database (and rebuilt
    /// from it if Redis lost them).
    pub reconcile_interval_ms: u64,
    /// Syncs asked for between those (units of the product coming back: a
    /// cancellation, a refund, a stock change) run at most this often: a stream of
    /// cancellations in a rush costs a sync per interval, not one each, and the
    /// units are on sale again within it. `0`: at once, every time.
    pub resync_interval_ms: u64,
    /// Reservations read by an instance and not written after this long are taken
    /// over by another (the first one stopped).
    pub claim_after_ms: u64,
    /// Order ids taken from the database's sequence at a time.
    pub id_block: i64,
    /// After Redis answered "sold out", this instance answers 409 without asking
    /// again for this long (units of cancelled orders come back after it).
    pub sold_out_recheck_ms: u64,
    /// How often each instance re-reads which products are on flash sale.
    pub refresh_interval_ms: u64,
    /// Most reservations each instance writes per second (`0`: as fast as the
    /// database takes them). A limit shaves the peak: the database gets a steady
    /// load while Redis takes the rush, and the queue (up to `max_queued`) is
    /// written after it.
    pub max_writes_per_s: u64,
}

impl Default for FlashSaleConfig {
    fn default() -> Self {
        FlashSaleConfig {
            max_queued: 20_000,
            batch_size: 500,
            poll_interval_ms: 20,
            reconcile_interval_ms: 5_000,
            resync_interval_ms: 1_000,
            claim_after_ms: 10_000,
            id_block: 1_000,
            sold_out_recheck_ms: 500,
            refresh_interval_ms: 1_000,
            max_writes_per_s: 0,
        }
    }
}

/// `[order.group_commit]`: on PostgreSQL, orders that arrive while others are being
/// written are placed together, up to `max_orders` in one transaction, by at most
/// `lanes` transactions at a time (per instance). A batch that fails for any reason
/// (stock running out, a reused key) keeps nothing and each of its orders is placed
/// on its own, so answers are the same as without it. MySQL/MariaDB and SQLite
/// always place orders one by one.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct GroupCommitConfig {
    /// Most orders in one transaction; `1` turns group commit off.
    pub max_orders: usize,
    /// Most batches being written at once.
    pub lanes: usize,
}

impl Default for GroupCommitConfig {
    fn default() -> Self {
        GroupCommitConfig {
            max_orders: 64,
            lanes: 2,
        }
    }
}

/// `[order.pay]`: paying orders with WeChat Pay, through `[pay.merchants]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrderPayConfig {
    /// The `[pay.merchants.<name>]` orders are paid to; empty: the only merchant
    /// configured.
    pub merchant: String,
    /// An order's `out_trade_no` is this prefix and its id in 10 digits
    /// (`wa0000000042`); apps or environments sharing a merchant need different
    /// prefixes.
    pub out_trade_no_prefix: String,
    /// What the payer sees on the payment sheet (at most 127 characters).
    pub description: String,
    /// Pending orders whose prepay is older than this are looked up at WeChat Pay:
    /// a notification can be lost.
    pub reconcile_after_s: u64,
    /// How often that reconciliation runs.
    pub reconcile_interval_ms: u64,
    /// Put a refunded order's units back on sale (off: refunds leave stock alone,
    /// as when the goods were shipped and are not coming back).
    pub restock_on_refund: bool,
}

impl Default for OrderPayConfig {
    fn default() -> Self {
        OrderPayConfig {
            merchant: String::new(),
            out_trade_no_prefix: "wa".into(),
            description: "weapp order".into(),
            reconcile_after_s: 60,
            reconcile_interval_ms: 30_000,
            restock_on_refund: false,
        }
    }
}

/// `[order.outbox]`: delivery of events after commit.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboxConfig {
    /// Longest wait for a batch of events committed here to fill up before the
    /// worker delivers what it has (the longest such an event waits).
    pub poll_interval_ms: u64,
    /// How often the worker also sweeps the outbox for due events it was not told
    /// about: retries, events of a stopped instance, hints dropped under overload.
    pub sweep_interval_ms: u64,
    /// Events claimed per poll.
    pub batch_size: i64,
    /// Events claimed at once at most when the worker is behind: it takes what
    /// waits, so its batches grow with the backlog and it catches up.
    pub max_batch_size: usize,
    /// Attempts before an event is parked as `failed`.
    pub max_attempts: i32,
    /// How long a worker's claim on an event lasts (another instance may take it over
    /// after that).
    pub lease_ms: i64,
    /// First retry delay, doubled per attempt up to `max_backoff_ms`.
    pub base_backoff_ms: i64,
    /// Longest retry delay.
    pub max_backoff_ms: i64,
    /// Delivered and parked events are deleted this long after they finished.
    pub keep_finished_s: i64,
    /// Events not handled yet (the outbox's pending ones plus, with the Redis
    /// relay, the slowest consumer group's; counted every `sweep_interval_ms`) past
    /// which new orders are refused with 429 `events_behind` and `Retry-After`, so
    /// delivery lag stays bounded instead of growing while orders come in (0: no
    /// bound).
    pub max_behind: i64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            poll_interval_ms: 200,
            sweep_interval_ms: 1_000,
            batch_size: 100,
            max_batch_size: 1_000,
            max_attempts: 12,
            lease_ms: 30_000,
            base_backoff_ms: 500,
            max_backoff_ms: 300_000,
            keep_finished_s: 7 * 86_400,
            max_behind: 50_000,
        }
    }
}

weapp::config_section!(OrderConfig);

impl ConfigSection for OrderConfig {
    const NAME: &'static str = "order";

    fn issues(&self, _config: &Config) -> Vec<ConfigIssue> {
        let mut out = Vec::new();
        let mut bad = |key: &str, reason: &str| out.push(ConfigIssue::new(key, reason));
        let prefix = &self.pay.out_trade_no_prefix;
        if prefix.is_empty()
            || prefix.len() > 20
            || !prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            bad(
                "order.pay.out_trade_no_prefix",
                "must be 1 to 20 letters, digits, - or _",
            );
        }
        let description = self.pay.description.chars().count();
        if description == 0 || description > 127 {
            bad("order.pay.description", "must be 1 to 127 characters");
        }
        if self.pay.reconcile_interval_ms == 0 {
            bad("order.pay.reconcile_interval_ms", "must be positive");
        }
        if self.max_items == 0 {
            bad("order.max_items", "must be at least 1");
        }
        if self.max_pending_units < 0 {
            bad("order.max_pending_units", "must be 0 (no cap) or more");
        }
        if self.max_qty < 1 {
            bad("order.max_qty", "must be at least 1");
        }
        if self.page_size < 1 || self.max_page_size < self.page_size {
            bad(
                "order.page_size",
                "must be between 1 and order.max_page_size",
            );
        }
        if self.retry.max_attempts == 0 {
            bad("order.retry.max_attempts", "must be at least 1");
        }
        for (key, value) in [
            ("order.expiry_interval_ms", self.expiry_interval_ms),
            (
                "order.outbox.poll_interval_ms",
                self.outbox.poll_interval_ms,
            ),
            (
                "order.outbox.sweep_interval_ms",
                self.outbox.sweep_interval_ms,
            ),
        ] {
            if value == 0 {
                bad(key, "must be positive");
            }
        }
        if self.group_commit.max_orders < 1 {
            bad("order.group_commit.max_orders", "must be at least 1");
        }
        if self.group_commit.lanes < 1 {
            bad("order.group_commit.lanes", "must be at least 1");
        }
        if self.outbox.batch_size < 1 {
            bad("order.outbox.batch_size", "must be positive");
        }
        if (self.outbox.max_batch_size as i64) < self.outbox.batch_size {
            bad(
                "order.outbox.max_batch_size",
                "must be at least order.outbox.batch_size",
            );
        }
        if self.outbox.max_attempts < 1 {
            bad("order.outbox.max_attempts", "must be positive");
        }
        if self.outbox.lease_ms < 1 {
            bad("order.outbox.lease_ms", "must be positive");
        }
        let flash = &self.flash_sale;
        for (key, value) in [
            ("order.flash_sale.max_queued", flash.max_queued),
            ("order.flash_sale.batch_size", flash.batch_size as i64),
            (
                "order.flash_sale.poll_interval_ms",
                flash.poll_interval_ms as i64,
            ),
            (
                "order.flash_sale.reconcile_interval_ms",
                flash.reconcile_interval_ms as i64,
            ),
            (
                "order.flash_sale.claim_after_ms",
                flash.claim_after_ms as i64,
            ),
            ("order.flash_sale.id_block", flash.id_block),
            (
                "order.flash_sale.refresh_interval_ms",
                flash.refresh_interval_ms as i64,
            ),
        ] {
            if value < 1 {
                bad(key, "must be positive");
            }
        }
        if self.outbox.max_behind < 0 {
            bad(
                "order.outbox.max_behind",
                "must be 0 (no bound) or positive",
            );
        }
        out
    }
}
