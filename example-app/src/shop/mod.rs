//! The shop's own plugin: demo products for a fresh embedded database, a
//! subscribe message to the buyer when an order is paid, and who may use which
//! real-time rooms.

mod paid_message;

use serde::{Deserialize, Serialize};
use weapp::config::ConfigSection;
use weapp::{AppContext, Plugin};
use weapp_order::{NewProduct, Orders};

/// `[shop]` settings.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct ShopConfig {
    /// Adds a few products when the catalogue is empty (the embedded default does).
    seed_demo_products: bool,
    /// Title of the app's subscribe template used to tell a buyer the order is
    /// paid; empty turns the message off.
    paid_template_title: String,
}

impl ConfigSection for ShopConfig {
    const NAME: &'static str = "shop";
}
weapp::config_section!(ShopConfig);

/// Seeds the catalogue on first run.
pub struct ShopPlugin;

weapp::register_plugin!(ShopPlugin);

/// What a newcomer's first `cargo run` sells.
fn demo_products() -> Vec<NewProduct> {
    [
        ("Jasmine green tea 茉莉绿茶", "500 g loose leaf", 4_800, 200),
        (
            "Mooncake gift box 月饼礼盒",
            "Six lotus-seed mooncakes",
            12_800,
            50,
        ),
        ("Ceramic teacup 陶瓷茶杯", "Hand-glazed, 150 ml", 2_900, 120),
    ]
    .into_iter()
    .map(|(name, description, price_fen, stock)| NewProduct {
        name: name.to_owned(),
        description: description.to_owned(),
        price_fen,
        stock,
        active: true,
    })
    .collect()
}

#[weapp::async_trait::async_trait]
impl Plugin for ShopPlugin {
    fn name(&self) -> &'static str {
        "shop"
    }

    fn dependencies(&self) -> &'static [&'static str] {
        &["order", "message", "realtime"]
    }

    async fn on_start(&self, ctx: &AppContext) -> weapp::Result<()> {
        let config = ctx.config().get::<ShopConfig>()?;
        if let Some(relay) = ctx.get::<weapp::realtime::Relay>() {
            // Live-stream comments: every signed-in buyer reads and writes.
            relay.allow("live:", weapp::realtime::OpenRooms);
            // `support:<user id>`: a buyer's own customer-service thread.
            relay.allow("support:", weapp::realtime::OwnRoom);
            // Shop-wide news, pushed by the server only.
            relay.allow("announcements", weapp::realtime::ListenOnly);
        }
        let Some(orders) = ctx.get::<Orders>() else {
            return Ok(());
        };
        if !config.paid_template_title.is_empty() {
            paid_message::subscribe(ctx, config.paid_template_title.clone());
        }
        if config.seed_demo_products && orders.catalog(1, 1).await?.items.is_empty() {
            let added = orders.seed_products(&demo_products()).await?.len();
            tracing::info!(added, "demo products added to the empty catalogue");
        }
        Ok(())
    }
}
