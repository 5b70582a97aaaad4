//! `order.paid` → a subscribe message to the buyer, through the message plugin's
//! queue (so it is checked, quota-aware and retried there).

use std::sync::Arc;

use serde_json::{Map, Value, json};
use weapp::AppContext;
use weapp::events::Delivered;
use weapp_message::{MessageError, Messages, SendRequest};
use weapp_order::events::Paid;

/// Subscribes the handler to `order.paid`.
pub(super) fn subscribe(ctx: &AppContext, title: String) {
    let title = Arc::new(title);
    ctx.events().on("shop", move |ctx, paid: Delivered<Paid>| {
        let title = title.clone();
        async move { send(&ctx, &title, &paid.event, &paid.id).await }
    });
}

/// A value for each keyword of the template, by its rule.
fn data_for(keywords: &[(String, String)], order_id: i64, total_fen: i64) -> Map<String, Value> {
    let now = chrono::Local::now()
        .format("%Y年%m月%d日 %H:%M")
        .to_string();
    keywords
        .iter()
        .map(|(key, rule)| {
            let value = match rule.as_str() {
                "character_string" | "number" => order_id.to_string(),
                "amount" => format!("{}.{:02}元", total_fen / 100, total_fen % 100),
                "time" | "date" => now.clone(),
                "phrase" => "已支付".to_owned(),
                _ => "订单已支付".to_owned(),
            };
            (key.clone(), json!(value))
        })
        .collect()
}

/// Queues the message once per event: `event_id` is its dedupe key, since an event
/// is delivered at least once (again after a crash, or on another instance).
async fn send(ctx: &AppContext, title: &str, paid: &Paid, event_id: &str) -> weapp::Result<()> {
    let order_id = paid.order_id;
    // An erased buyer has no one to tell.
    let Some(user_id) = paid.user_id else {
        return Ok(());
    };
    let Some(messages) = ctx.get::<Messages>() else {
        return Ok(());
    };
    let mut templates = messages.templates().await?;
    if !templates.iter().any(|t| t.title == title) {
        messages.sync_templates(ctx).await?;
        templates = messages.templates().await?;
    }
    let Some(template) = templates.into_iter().find(|t| t.title == title) else {
        tracing::warn!(
            title,
            "no subscribe template with this title; paid message skipped"
        );
        return Ok(());
    };
    let request = SendRequest {
        touser: user_id,
        template_id: template.template_id.clone(),
        page: Some(format!("pages/order/detail?id={order_id}")),
        data: data_for(&template.keywords(), order_id, paid.total_fen),
        dedupe_key: Some(event_id.to_owned()),
        ..Default::default()
    };
    match messages.send(ctx, request).await {
        Ok(_) => Ok(()),
        // The buyer did not subscribe: nothing to send, nothing to retry.
        Err(MessageError::NoQuota { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
