//! `weapp-pay`: WeChat Pay API v3 for mini-program shops, as WeChat defines it.
//!
//! - [`PayClient`]: JSAPI prepay, query, close, refund and refund query, every
//!   request signed with the merchant's key (`WECHATPAY2-SHA256-RSA2048`), every
//!   answer verified against WeChat Pay's signature before it is believed.
//! - [`Merchant::request_payment`]: the `wx.requestPayment` parameters (`paySign`).
//! - `POST /api/pay/notify/{merchant}`: notifications verified on the raw body
//!   (±`pay.max_skew_s`), decrypted with the APIv3 key, checked to be for that
//!   merchant, then applied by the app's [`PaymentSink`] (the order plugin's).
//! - WeChat Pay's keys: the public key (`PUB_KEY_ID_…`) and/or platform certificates
//!   downloaded and refreshed per merchant, chosen by `Wechatpay-Serial`; several
//!   merchants in one process.
//! - [`sandbox`]: WeChat Pay offline, mounted with the embedded WeChat sandbox.
//!
//! An app enables the plugin by linking it: `use weapp_pay as _;`.

pub mod client;
pub mod config;
pub mod error;
pub mod merchant;
pub mod notify;
pub mod platform_keys;
mod routes;
pub mod samples;
#[allow(clippy::result_large_err)]
pub mod sandbox;
mod service;
pub mod types;
pub mod verify;

use std::sync::Arc;
use std::time::Duration;

use weapp::actix_web::web;
use weapp::wechat::WechatConfig;
use weapp::{AppContext, BackgroundTask, Plugin};

pub use client::PayClient;
pub use config::{MerchantConfig, PayConfig};
pub use error::PayError;
pub use merchant::{Merchant, RequestPayment};
pub use service::{PaymentSink, Payments};

/// The pay plugin; registered with the app at compile time.
pub struct PayPlugin;

weapp::register_plugin!(PayPlugin);

/// After a failed certificate download, the next try comes this much sooner.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(30);

#[weapp::async_trait::async_trait]
impl Plugin for PayPlugin {
    fn name(&self) -> &'static str {
        "pay"
    }

    fn routes(&self, cfg: &mut web::ServiceConfig) {
        routes::configure(cfg);
    }

    fn sandbox_routes(&self, cfg: &mut web::ServiceConfig) {
        sandbox::routes(cfg);
    }

    async fn on_start(&self, ctx: &AppContext) -> weapp::Result<()> {
        let config = ctx.config().get::<PayConfig>()?;
        let wechat = ctx.config().get::<WechatConfig>()?;
        let sandboxed = ctx.get::<weapp::wechat::EmbeddedSandbox>().is_some();
        // The embedded sandbox answers on the app's own address, as WeChat does.
        let own_address = if sandboxed {
            use weapp::wechat::WechatContext;
            Some(ctx.wechat()?.base_url().to_owned())
        } else {
            None
        };
        let defaults = merchant::Defaults {
            appid: &wechat.appid,
            sandbox: sandboxed,
            development: ctx.config().is_development(),
            app_base_url: own_address.as_deref(),
        };
        let merchants = config
            .merchants
            .iter()
            .map(|(name, m)| Merchant::build(name, m, &defaults))
            .collect::<weapp::Result<Vec<_>>>()?;
        let base_url = own_address
            .clone()
            .or_else(|| config.base_url.clone())
            .unwrap_or_else(|| config::PRODUCTION_BASE_URL.to_owned());
        let client = PayClient::new(&config, &base_url)
            .map_err(|e| weapp::Error::internal(format!("WeChat Pay client: {e}")))?;
        let payments = Payments::new(client, merchants, config.max_skew_s);
        for merchant in payments.merchants() {
            tracing::info!(
                merchant = %merchant.name,
                mchid = %merchant.mchid,
                certificates = merchant.uses_certificates,
                base_url,
                "WeChat Pay merchant ready"
            );
        }
        if let Some(own_address) = &own_address {
            let merchants = payments.merchants().cloned().collect();
            ctx.insert(sandbox::PaySandbox::new(own_address, merchants)?);
        }
        ctx.insert(payments);
        Ok(())
    }

    fn background_tasks(&self, _ctx: &AppContext) -> Vec<BackgroundTask> {
        vec![BackgroundTask::new(
            "pay-certificates",
            refresh_certificates,
        )]
    }
}

/// Downloads each certificate merchant's platform certificates at start, then every
/// `pay.certificate_refresh_s` (sooner after a failure).
async fn refresh_certificates(ctx: AppContext, shutdown: weapp::Shutdown) {
    let Some(payments) = ctx.get::<Payments>() else {
        return;
    };
    let merchants: Vec<Arc<Merchant>> = payments
        .merchants()
        .filter(|m| m.uses_certificates)
        .cloned()
        .collect();
    if merchants.is_empty() {
        return;
    }
    let every = ctx
        .config()
        .get::<PayConfig>()
        .map_or(3_600, |c| c.certificate_refresh_s);
    loop {
        let mut failed = false;
        for merchant in &merchants {
            match payments.client().refresh_certificates(merchant).await {
                Ok(count) => {
                    tracing::debug!(merchant = %merchant.name, count, "platform certificates refreshed")
                }
                Err(e) => {
                    failed = true;
                    tracing::warn!(merchant = %merchant.name, error = %e, "platform certificate download failed");
                }
            }
        }
        let wait = if failed {
            RETRY_AFTER_FAILURE
        } else {
            Duration::from_secs(every)
        };
        tokio::select! {
            _ = shutdown.wait() => break,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
