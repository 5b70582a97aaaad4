//! In-process events: one plugin states a fact (`order.paid`), others react to it
//! (send a subscribe message, write an audit row) without depending on each other.
//!
//! Plugins subscribe in [`Plugin::on_start`](crate::Plugin::on_start) through
//! [`AppContext::events`](crate::AppContext::events). Publishers that must not lose an
//! event (the order plugin) write it to a transactional outbox first and publish after
//! commit, retrying until every handler succeeds: delivery is at least once, so a
//! handler must be idempotent, keyed by [`Event::id`].
//!
//! Between plugins, events are typed: the publishing plugin declares each payload as
//! a Rust type implementing [`TypedEvent`] (its topic, its fields), writes it with
//! [`Event::typed`], and subscribers take it with [`EventBus::on`], so a field that
//! is renamed or dropped is a compile error in the subscriber, and a payload that
//! does not decode fails the handler (the publisher retries it) instead of being
//! skipped in silence. Untyped subscriptions ([`EventBus::subscribe`]) stay for
//! subscribers that take every topic (the audit log).
//!
//! A queue worker publishes what it claimed with [`EventBus::publish_batch`]; a
//! subscriber that can write many events at once (the audit log) takes them with
//! [`EventBus::subscribe_batch`], one call per batch instead of one per event.
//!
//! # Across instances
//!
//! [`EventBus::publish`] runs the subscribers of the instance that publishes. An
//! event that every instance's subscribers must see exactly once between them (the
//! order outbox's) is published with [`EventBus::publish_shared_batch`]: with
//! `[events] relay` on Redis (the default when `redis.url` is set) it is appended to
//! a Redis stream, and each subscription is a consumer group there, so each
//! subscription handles each event once across all instances, whichever instance
//! reads it (see [`stream`]). Without Redis, shared events are published in process.

mod config;
mod event;
pub mod stream;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, RwLock};

pub use config::{EventsConfig, RelayMode};
pub use event::{DecodeError, Delivered, Event, TypedEvent};
use stream::StreamRelay;

use crate::AppContext;

type HandlerFuture = Pin<Box<dyn Future<Output = crate::Result<()>> + Send>>;
type OneHandler = Arc<dyn Fn(AppContext, Arc<Event>) -> HandlerFuture + Send + Sync>;
type BatchHandler = Arc<dyn Fn(AppContext, Vec<Arc<Event>>) -> HandlerFuture + Send + Sync>;

/// How a subscriber takes its events.
#[derive(Clone)]
enum Handler {
    /// One call per event.
    One(OneHandler),
    /// One call per published batch, with the batch's matching events in order.
    Batch(BatchHandler),
}

struct Subscription {
    subscriber: &'static str,
    pattern: String,
    handler: Handler,
}

/// Whether `pattern` can match some topic starting with `prefix`.
fn may_match(pattern: &str, prefix: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(start) => start.starts_with(prefix) || prefix.starts_with(start),
        None => pattern.starts_with(prefix),
    }
}

/// Whether `topic` is `pattern`, or starts with its prefix when it ends in `*`.
fn matches(pattern: &str, topic: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => topic.starts_with(prefix),
        None => pattern == topic,
    }
}

/// Handlers that failed for one published event.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{} handler(s) failed: {}", failures.len(), failures.join("; "))]
pub struct PublishError {
    /// `subscriber: error` for each failed handler.
    pub failures: Vec<String>,
}

/// Topic subscriptions of one app, and the relay its shared events go through.
#[derive(Default)]
pub struct EventBus {
    subscriptions: RwLock<Vec<Subscription>>,
    relay: OnceLock<Arc<StreamRelay>>,
    shared_prefixes: RwLock<Vec<String>>,
}

/// One subscription as a consumer group of the shared event stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionGroup {
    /// `subscriber:pattern` (`audit:*`), with `#2`, `#3`… for repeats: stable
    /// across restarts and releases as long as the subscription is.
    pub name: String,
    index: usize,
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
        let handler: OneHandler = Arc::new(move |ctx, event| Box::pin(handler(ctx, event)));
        self.add(subscriber, pattern, Handler::One(handler));
    }

    /// Calls `handler` with every event of type `E` (topic [`TypedEvent::TOPIC`]),
    /// decoded. An event whose payload does not decode fails this subscriber, so a
    /// publisher that retries (the outbox) delivers it again once fixed, and the log
    /// says which field is wrong.
    pub fn on<E, F, Fut>(&self, subscriber: &'static str, handler: F)
    where
        E: TypedEvent,
        F: Fn(AppContext, Delivered<E>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = crate::Result<()>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        self.subscribe(subscriber, E::TOPIC, move |ctx, event: Arc<Event>| {
            let handler = handler.clone();
            async move {
                let delivered = Delivered {
                    id: event.id.clone(),
                    event: event.decode::<E>()?,
                };
                handler(ctx, delivered).await
            }
        });
    }

    /// Like [`EventBus::subscribe`], but `handler` gets the matching events of a
    /// whole [`EventBus::publish_batch`] in one call (a single event for
    /// [`EventBus::publish`]), so it can write them in one transaction. If it fails,
    /// every event it was given counts as failed for it.
    pub fn subscribe_batch<F, Fut>(&self, subscriber: &'static str, pattern: &str, handler: F)
    where
        F: Fn(AppContext, Vec<Arc<Event>>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = crate::Result<()>> + Send + 'static,
    {
        let handler: BatchHandler = Arc::new(move |ctx, events| Box::pin(handler(ctx, events)));
        self.add(subscriber, pattern, Handler::Batch(handler));
    }

    fn add(&self, subscriber: &'static str, pattern: &str, handler: Handler) {
        self.subscriptions
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(Subscription {
                subscriber,
                pattern: pattern.to_owned(),
                handler,
            });
    }

    /// Sends shared events through `relay` from now on (the app builder does this
    /// when `[events] relay` is on Redis); a second call is ignored.
    pub fn set_relay(&self, relay: Arc<StreamRelay>) {
        let _ = self.relay.set(relay);
    }

    /// The relay shared events go through, if any.
    pub fn relay(&self) -> Option<&Arc<StreamRelay>> {
        self.relay.get()
    }

    /// Publishes events that every instance's subscribers must handle once between
    /// them: with a relay, appends them to the shared stream (each result says
    /// whether the append succeeded; handlers run later, on whichever instance reads
    /// them); without one, like [`EventBus::publish_batch`].
    pub async fn publish_shared_batch(
        &self,
        ctx: &AppContext,
        events: Vec<Event>,
    ) -> Vec<Result<(), PublishError>> {
        let Some(relay) = self.relay.get() else {
            return self.publish_batch(ctx, events).await;
        };
        let prefixes = self.shared_prefixes();
        let undeclared =
            |e: &&Event| !prefixes.is_empty() && !prefixes.iter().any(|p| e.topic.starts_with(p));
        if let Some(event) = events.iter().find(undeclared) {
            // No consumer group may read it: refused, not lost in silence.
            let refused = PublishError {
                failures: vec![format!(
                    "relay: topic {} is not declared shared (EventBus::share_topics)",
                    event.topic
                )],
            };
            return events.iter().map(|_| Err(refused.clone())).collect();
        }
        let outcome = relay.append(&events).await.map_err(|e| PublishError {
            failures: vec![format!("relay: {e}")],
        });
        events.iter().map(|_| outcome.clone()).collect()
    }

    /// [`EventBus::publish_shared_batch`] for one event.
    pub async fn publish_shared(&self, ctx: &AppContext, event: Event) -> Result<(), PublishError> {
        self.publish_shared_batch(ctx, vec![event])
            .await
            .pop()
            .unwrap_or(Ok(()))
    }

    /// Declares that shared events with topics starting with `prefix` (`order.`)
    /// are published, in a plugin's `on_start`. Once any prefix is declared, only
    /// subscriptions that can match a declared prefix get a consumer group (the
    /// others would read every shared event only to skip it), and a shared event
    /// outside every declared prefix is refused. With none declared, every
    /// subscription gets a group.
    pub fn share_topics(&self, prefix: &str) {
        let mut prefixes = self
            .shared_prefixes
            .write()
            .unwrap_or_else(|p| p.into_inner());
        if !prefixes.iter().any(|p| p == prefix) {
            prefixes.push(prefix.to_owned());
        }
    }

    /// The topic prefixes declared with [`EventBus::share_topics`].
    pub fn shared_prefixes(&self) -> Vec<String> {
        self.shared_prefixes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The consumer groups of the shared stream: every subscription that can match a
    /// shared topic (see [`EventBus::share_topics`]), in subscription order.
    pub fn groups(&self) -> Vec<SubscriptionGroup> {
        let prefixes = self.shared_prefixes();
        let subscriptions = self.subscriptions.read().unwrap_or_else(|p| p.into_inner());
        let mut seen: std::collections::HashMap<String, usize> = Default::default();
        subscriptions
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                prefixes.is_empty() || prefixes.iter().any(|p| may_match(&s.pattern, p))
            })
            .map(|(index, s)| {
                let base = format!("{}:{}", s.subscriber, s.pattern);
                let n = seen.entry(base.clone()).or_default();
                *n += 1;
                let name = match *n {
                    1 => base,
                    n => format!("{base}#{n}"),
                };
                SubscriptionGroup { name, index }
            })
            .collect()
    }

    /// Runs one subscription's handler over `events` (those it does not match are
    /// skipped and count as handled); returns, per event, whether it was handled.
    pub async fn deliver_to(
        &self,
        ctx: &AppContext,
        group: &SubscriptionGroup,
        events: &[Arc<Event>],
    ) -> Vec<bool> {
        let found = self
            .subscriptions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(group.index)
            .map(|s| (s.subscriber, s.pattern.clone(), s.handler.clone()));
        let Some((subscriber, pattern, handler)) = found else {
            return vec![false; events.len()];
        };
        let matching: Vec<usize> = (0..events.len())
            .filter(|i| matches(&pattern, &events[*i].topic))
            .collect();
        let mut handled = vec![true; events.len()];
        for (i, _) in run_handler(ctx, subscriber, &handler, events, matching).await {
            handled[i] = false;
        }
        handled
    }

    /// Runs every matching handler (one after the other, in subscription order) and
    /// reports those that failed; the others have run.
    pub async fn publish(&self, ctx: &AppContext, event: Event) -> Result<(), PublishError> {
        self.publish_batch(ctx, vec![event])
            .await
            .pop()
            .unwrap_or(Ok(()))
    }

    /// Publishes events in order: each subscription in turn gets the events it
    /// matches (one call per event, or one call for all of them). Returns, per event,
    /// the handlers that failed for it.
    pub async fn publish_batch(
        &self,
        ctx: &AppContext,
        events: Vec<Event>,
    ) -> Vec<Result<(), PublishError>> {
        let events: Vec<Arc<Event>> = events.into_iter().map(Arc::new).collect();
        // Each subscription with the indices of the events it matches; the lock is
        // not held across handlers.
        let subscriptions: Vec<(&'static str, Handler, Vec<usize>)> = self
            .subscriptions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(|s| {
                let matching: Vec<usize> = (0..events.len())
                    .filter(|i| matches(&s.pattern, &events[*i].topic))
                    .collect();
                (!matching.is_empty()).then(|| (s.subscriber, s.handler.clone(), matching))
            })
            .collect();
        let mut failures: Vec<Vec<String>> = vec![Vec::new(); events.len()];
        for (subscriber, handler, matching) in subscriptions {
            for (i, e) in run_handler(ctx, subscriber, &handler, &events, matching).await {
                failures[i].push(format!("{subscriber}: {e}"));
            }
        }
        failures
            .into_iter()
            .map(|failures| {
                if failures.is_empty() {
                    Ok(())
                } else {
                    Err(PublishError { failures })
                }
            })
            .collect()
    }

    /// Subscribers whose pattern matches `topic`, for diagnostics and tests.
    pub fn subscribers(&self, topic: &str) -> Vec<&'static str> {
        self.subscriptions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|s| matches(&s.pattern, topic))
            .map(|s| s.subscriber)
            .collect()
    }
}

/// Runs `handler` over the events at `matching`; returns the failed ones with their
/// error, logged.
async fn run_handler(
    ctx: &AppContext,
    subscriber: &'static str,
    handler: &Handler,
    events: &[Arc<Event>],
    matching: Vec<usize>,
) -> Vec<(usize, String)> {
    let mut failed = Vec::new();
    match handler {
        Handler::One(handler) => {
            for i in matching {
                if let Err(e) = handler(ctx.clone(), events[i].clone()).await {
                    failed.push((i, e.to_string()));
                }
            }
        }
        Handler::Batch(handler) => {
            let batch = matching.iter().map(|i| events[*i].clone()).collect();
            if let Err(e) = handler(ctx.clone(), batch).await {
                let message = e.to_string();
                failed.extend(matching.into_iter().map(|i| (i, message.clone())));
            }
        }
    }
    for (i, e) in &failed {
        let event = &events[*i];
        tracing::warn!(subscriber, topic = %event.topic, event_id = %event.id, error = %e, "event handler failed");
    }
    failed
}
