//! Who may join or publish in which room: a [`RoomPolicy`] per room-name prefix,
//! given by the app or a plugin with [`Relay::allow`](super::Relay::allow). A room no
//! policy covers is closed to everyone: nothing is open by default.

use crate::AppContext;

/// Decides, for rooms under one prefix, who may join and who may publish.
///
/// ```
/// use weapp::AppContext;
/// use weapp::realtime::RoomPolicy;
///
/// /// `team:<id>`: members of the team only.
/// struct TeamRooms;
///
/// #[weapp::async_trait::async_trait]
/// impl RoomPolicy for TeamRooms {
///     async fn may_join(&self, _ctx: &AppContext, user_id: i64, room: &str) -> bool {
///         // Look the membership up in the app's tables; here: team 1 is user 1's.
///         room == format!("team:{user_id}")
///     }
///
///     async fn may_publish(&self, ctx: &AppContext, user_id: i64, room: &str) -> bool {
///         self.may_join(ctx, user_id, room).await
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait RoomPolicy: Send + Sync + 'static {
    /// Whether `user_id` may join `room`.
    async fn may_join(&self, ctx: &AppContext, user_id: i64, room: &str) -> bool;

    /// Whether `user_id`, who joined `room`, may publish there.
    async fn may_publish(&self, ctx: &AppContext, user_id: i64, room: &str) -> bool;
}

/// Any signed-in user joins and publishes (public chat rooms, live-room comments).
pub struct OpenRooms;

#[async_trait::async_trait]
impl RoomPolicy for OpenRooms {
    async fn may_join(&self, _: &AppContext, _: i64, _: &str) -> bool {
        true
    }

    async fn may_publish(&self, _: &AppContext, _: i64, _: &str) -> bool {
        true
    }
}

/// Any signed-in user joins; only the server sends ([`Relay::push_to_room`](super::Relay::push_to_room)):
/// announcements, live scores, stock tickers.
pub struct ListenOnly;

#[async_trait::async_trait]
impl RoomPolicy for ListenOnly {
    async fn may_join(&self, _: &AppContext, _: i64, _: &str) -> bool {
        true
    }

    async fn may_publish(&self, _: &AppContext, _: i64, _: &str) -> bool {
        false
    }
}

/// Rooms named `<prefix><user id>` (e.g. `support:42`): only that user joins and
/// publishes; the server pushes to them (a customer-service thread).
pub struct OwnRoom;

#[async_trait::async_trait]
impl RoomPolicy for OwnRoom {
    async fn may_join(&self, _: &AppContext, user_id: i64, room: &str) -> bool {
        room.rsplit(':').next() == Some(user_id.to_string().as_str())
    }

    async fn may_publish(&self, ctx: &AppContext, user_id: i64, room: &str) -> bool {
        self.may_join(ctx, user_id, room).await
    }
}
