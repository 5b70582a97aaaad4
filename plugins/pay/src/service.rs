//! [`Payments`]: the merchants, the client and the notification pipeline, shared
//! on the app's context.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};

use weapp::actix_web::http::header::HeaderMap;

use crate::client::PayClient;
use crate::merchant::Merchant;
use crate::notify::{self, Notice, Refusal};
use crate::types::{RefundNotice, Transaction};
use crate::verify::{SignatureHeaders, Unverified};

/// Where verified payments go: the plugin that owns what was bought (the order
/// plugin installs one). An `Err` makes the notification fail, so WeChat Pay
/// delivers it again later; an outcome that no retry changes should be recorded
/// and answered `Ok`.
#[weapp::async_trait::async_trait]
pub trait PaymentSink: Send + Sync + 'static {
    /// A `TRANSACTION.SUCCESS` for `merchant`. May arrive more than once, and after
    /// a refund of the same payment.
    async fn paid(&self, merchant: &Merchant, transaction: &Transaction) -> weapp::Result<()>;

    /// A refund's outcome (`refund_status` `SUCCESS`, `ABNORMAL` or `CLOSED`). May
    /// arrive more than once.
    async fn refunded(&self, merchant: &Merchant, refund: &RefundNotice) -> weapp::Result<()>;
}

/// Downloads of certificates an unknown serial may cause, at most one per this
/// many seconds per merchant: a forged serial must not make us hammer WeChat Pay.
const UNKNOWN_SERIAL_REFRESH_S: i64 = 60;

struct Entry {
    merchant: Arc<Merchant>,
    last_unknown_refresh: AtomicI64,
}

/// The app's WeChat Pay merchants and client: `ctx.get::<Payments>()`.
pub struct Payments {
    client: PayClient,
    merchants: BTreeMap<String, Entry>,
    max_skew_s: u64,
    sink: OnceLock<Arc<dyn PaymentSink>>,
}

impl Payments {
    /// Payments over `client` for `merchants`.
    pub fn new(client: PayClient, merchants: Vec<Merchant>, max_skew_s: u64) -> Payments {
        let merchants = merchants
            .into_iter()
            .map(|m| {
                let entry = Entry {
                    merchant: Arc::new(m),
                    last_unknown_refresh: AtomicI64::new(i64::MIN),
                };
                (entry.merchant.name.clone(), entry)
            })
            .collect();
        Payments {
            client,
            merchants,
            max_skew_s,
            sink: OnceLock::new(),
        }
    }

    /// The client.
    pub fn client(&self) -> &PayClient {
        &self.client
    }

    /// The merchant configured under `name`.
    pub fn merchant(&self, name: &str) -> Option<&Arc<Merchant>> {
        self.merchants.get(name).map(|e| &e.merchant)
    }

    /// Every merchant, by name.
    pub fn merchants(&self) -> impl Iterator<Item = &Arc<Merchant>> {
        self.merchants.values().map(|e| &e.merchant)
    }

    /// Installs where verified payments go; `false` if one was installed already.
    pub fn set_sink(&self, sink: Arc<dyn PaymentSink>) -> bool {
        self.sink.set(sink).is_ok()
    }

    /// Verifies, opens and applies a notification for merchant `name`; `Ok` means
    /// WeChat Pay may stop sending it.
    pub async fn receive(
        &self,
        name: &str,
        headers: &HeaderMap,
        body: &[u8],
        now_s: i64,
    ) -> Result<(), Refusal> {
        let outcome = self.receive_uncounted(name, headers, body, now_s).await;
        match &outcome {
            Ok(()) => notify::counted("applied"),
            Err(refusal) => notify::counted(refusal.code()),
        }
        outcome
    }

    async fn receive_uncounted(
        &self,
        name: &str,
        headers: &HeaderMap,
        body: &[u8],
        now_s: i64,
    ) -> Result<(), Refusal> {
        let entry = self.merchants.get(name).ok_or(Refusal::UnknownMerchant)?;
        let merchant = &entry.merchant;
        let signed = SignatureHeaders::from_request(headers).map_err(Refusal::Unverified)?;
        match signed.verify(merchant, body, now_s, self.max_skew_s) {
            Err(Unverified::UnknownSerial) if merchant.uses_certificates => {
                let last = entry.last_unknown_refresh.load(Ordering::Relaxed);
                if now_s.saturating_sub(last) < UNKNOWN_SERIAL_REFRESH_S
                    || entry
                        .last_unknown_refresh
                        .compare_exchange(last, now_s, Ordering::Relaxed, Ordering::Relaxed)
                        .is_err()
                {
                    return Err(Refusal::Unverified(Unverified::UnknownSerial));
                }
                if let Err(e) = self.client.refresh_certificates(merchant).await {
                    tracing::warn!(merchant = %merchant.name, error = %e, "certificate refresh failed");
                }
                signed.verify(merchant, body, now_s, self.max_skew_s)
            }
            other => other,
        }
        .map_err(Refusal::Unverified)?;
        let (id, notice) = notify::open(merchant, body)?;
        let sink = self.sink.get().ok_or_else(|| {
            Refusal::NotApplied(weapp::Error::unavailable(
                "pay_not_ready",
                "no plugin takes payments yet",
            ))
        })?;
        let applied = match &notice {
            Notice::Paid(transaction) => sink.paid(merchant, transaction).await,
            Notice::Refund(refund) => sink.refunded(merchant, refund).await,
            Notice::Other(event) => {
                tracing::info!(merchant = %merchant.name, id, event, "notification ignored");
                Ok(())
            }
        };
        applied.map_err(Refusal::NotApplied)
    }
}
