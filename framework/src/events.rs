//! In-process events: one plugin states a fact (`order.paid`), others react to it
//! (send a subscribe message, write an audit row) without depending on each other.
//!
//! Plugins subscribe in [`Plugin::on_start`](crate::Plugin::on_start) through
//! [`AppContext::events`](crate::AppContext::events). Publishers that must not lose an
//! event (the order plugin) write it to a transactional outbox first and publish after
//! commit, retrying until every handler succeeds: delivery is at least once, so a
//! handler must be idempotent, keyed by [`Event::id`].

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use crate::AppContext;

/// Something that happened, with a JSON payload that carries no personal data in clear.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Unique and stable across redeliveries (e.g. `order-outbox:42`).
    pub id: String,
    /// Dotted name, e.g. `order.paid`.
    pub topic: String,
    /// Facts about the event.
    pub payload: serde_json::Value,
}

type HandlerFuture = Pin<Box<dyn Future<Output = crate::Result<()>> + Send>>;
type Handler = Arc<dyn Fn(AppContext, Arc<Event>) -> HandlerFuture + Send + Sync>;

struct Subscription {
    subscriber: &'static str,
    pattern: String,
    handler: Handler,
}

impl Subscription {
    fn matches(&self, topic: &str) -> bool {
        match self.pattern.strip_suffix('*') {
            Some(prefix) => topic.starts_with(prefix),
            None => self.pattern == topic,
        }
    }
}

/// Handlers that failed for one published event.
#[derive(Debug, thiserror::Error)]
#[error("{} handler(s) failed: {}", failures.len(), failures.join("; "))]
pub struct PublishError {
    /// `subscriber: error` for each failed handler.
    pub failures: Vec<String>,
}

/// Topic subscriptions of one app.
#[derive(Default)]
pub struct EventBus {
    subscriptions: RwLock<Vec<Subscription>>,
}

impl EventBus {
    /// Calls `handler` for every event whose topic is `pattern`, or starts with its
    /// prefix when it ends in `*` (`order.*`, or `*` for all). `subscriber` names the
    /// caller in logs.
    pub fn subscribe<F, Fut>(&self, subscriber: &'static str, pattern: &str, handler: F)
    where
        F: Fn(AppContext, Arc<Event>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = crate::Result<()>> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |ctx, event| Box::pin(handler(ctx, event)));
        self.subscriptions
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(Subscription {
                subscriber,
                pattern: pattern.to_owned(),
                handler,
            });
    }

    /// Runs every matching handler (one after the other, in subscription order) and
    /// reports those that failed; the others have run.
    pub async fn publish(&self, ctx: &AppContext, event: Event) -> Result<(), PublishError> {
        let matching: Vec<(&'static str, Handler)> = self
            .subscriptions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|s| s.matches(&event.topic))
            .map(|s| (s.subscriber, s.handler.clone()))
            .collect();
        let event = Arc::new(event);
        let mut failures = Vec::new();
        for (subscriber, handler) in matching {
            if let Err(e) = handler(ctx.clone(), event.clone()).await {
                tracing::warn!(subscriber, topic = %event.topic, event_id = %event.id, error = %e, "event handler failed");
                failures.push(format!("{subscriber}: {e}"));
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(PublishError { failures })
        }
    }

    /// Subscribers whose pattern matches `topic`, for diagnostics and tests.
    pub fn subscribers(&self, topic: &str) -> Vec<&'static str> {
        self.subscriptions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|s| s.matches(topic))
            .map(|s| s.subscriber)
            .collect()
    }
}
