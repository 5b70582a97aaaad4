//! What an event is: its id, topic and JSON payload, and the typed payloads plugins
//! declare for their topics.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A payload type of one topic, e.g. the order plugin's `order.paid`.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use weapp::events::{Event, TypedEvent};
///
/// #[derive(Debug, PartialEq, Serialize, Deserialize)]
/// struct CouponUsed {
///     coupon_id: i64,
///     user_id: i64,
/// }
///
/// impl TypedEvent for CouponUsed {
///     const TOPIC: &'static str = "coupon.used";
/// }
///
/// let event = Event::typed("coupon:7", &CouponUsed { coupon_id: 7, user_id: 1 });
/// assert_eq!(event.topic, "coupon.used");
/// assert_eq!(event.decode::<CouponUsed>().unwrap(), CouponUsed { coupon_id: 7, user_id: 1 });
/// ```
pub trait TypedEvent: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The topic every event of this type is published under.
    const TOPIC: &'static str;
}

/// An event whose payload is not the type its subscriber expects.
#[derive(Debug, thiserror::Error)]
#[error("event {id} ({topic}) is not a {expected}: {reason}")]
pub struct DecodeError {
    /// The event's id.
    pub id: String,
    /// Its topic.
    pub topic: String,
    /// The expected topic.
    pub expected: &'static str,
    /// What did not match.
    pub reason: String,
}

impl crate::error::SubsystemError for DecodeError {
    fn context(&self) -> Option<&'static str> {
        Some("event")
    }
}

/// A typed event as a subscriber gets it: the payload, and the event's id to make
/// the handler idempotent (delivery is at least once).
#[derive(Debug, Clone, PartialEq)]
pub struct Delivered<E> {
    /// Unique and stable across redeliveries.
    pub id: String,
    /// The decoded payload.
    pub event: E,
}

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

impl Event {
    /// The event `payload` under its type's topic, with id `id`.
    pub fn typed<E: TypedEvent>(id: impl Into<String>, payload: &E) -> Event {
        Event {
            id: id.into(),
            topic: E::TOPIC.to_owned(),
            // A payload type is plain data: it always serializes.
            payload: serde_json::to_value(payload).unwrap_or_default(),
        }
    }

    /// The payload as `E`: an error if the topic is another or a field is missing
    /// or of the wrong type.
    pub fn decode<E: TypedEvent>(&self) -> Result<E, DecodeError> {
        let error = |reason: String| DecodeError {
            id: self.id.clone(),
            topic: self.topic.clone(),
            expected: E::TOPIC,
            reason,
        };
        if self.topic != E::TOPIC {
            return Err(error("another topic".to_owned()));
        }
        E::deserialize(&self.payload).map_err(|e| error(e.to_string()))
    }
}
