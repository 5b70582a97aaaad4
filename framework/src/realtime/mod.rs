//! Real-time relay: authenticated WebSockets for mini programs (`wx.connectSocket`),
//! fanned out across instances. Mounted by the built-in `realtime` plugin (turn it
//! off with `realtime.enabled = false`).
//!
//! - `GET /ws` upgrades with the same access token as the REST API, in
//!   `Authorization: Bearer <token>` or, where the client cannot set headers, as the
//!   subprotocols `weapp.v1, bearer.<token>` (`Sec-WebSocket-Protocol`; the server
//!   answers `weapp.v1`). A token in the URL is not accepted: URLs end up in logs.
//! - A small JSON [`protocol`]: join, leave, publish, server push, ack, error.
//! - Who may join or publish where: a [`RoomPolicy`] per room prefix, given by the
//!   app or a plugin with [`Relay::allow`]; rooms no policy covers are closed.
//! - Server side: `ctx.get::<Relay>()` pushes to a user or a room, from any instance
//!   ([`Relay::push_to_user`], [`Relay::push_to_room`]).
//! - A socket closes with a documented [`CloseCode`] when its session ends (logout,
//!   logout-all, erasure: at once, on every instance), its token expires without an
//!   `auth` frame, it idles, it reads too slowly, or the server stops.
//! - Limits in [`RealtimeConfig`]; metrics `realtime_connections`,
//!   `realtime_messages_{in,out}_total`, `realtime_dropped_total{reason}`,
//!   `realtime_closed_total{reason}`, `realtime_fanout_latency_seconds`; each socket's
//!   span carries its `connection_id`.

mod config;
mod fanout;
mod hub;
mod metrics;
mod policy;
pub mod protocol;
mod socket;

use std::sync::{Arc, RwLock};

use actix_web::web;
use serde::Serialize;

pub use config::RealtimeConfig;
pub use policy::{ListenOnly, OpenRooms, OwnRoom, RoomPolicy};
pub use protocol::CloseCode;

use fanout::{Fanout, Target};
use hub::{Frame, Hub, HubLimits};
use protocol::ServerFrame;

use crate::AppContext;
use crate::auth::SessionEnded;
use crate::plugin::BackgroundTask;

/// The relay of this app, in its context: pushes to sockets on every instance.
pub struct Relay {
    hub: Arc<Hub>,
    fanout: Option<Arc<Fanout>>,
    policies: RwLock<Vec<(String, Arc<dyn RoomPolicy>)>>,
    config: RealtimeConfig,
}

impl Relay {
    fn new(config: RealtimeConfig, redis: Option<&crate::kv::RedisClient>) -> crate::Result<Self> {
        let fanout = match redis {
            Some(client) => Some(Arc::new(
                Fanout::new(client, config.stream_max_len).map_err(crate::Error::from)?,
            )),
            None => None,
        };
        Ok(Relay {
            hub: Arc::new(Hub::new(HubLimits {
                max_connections: config.max_connections,
                max_per_user: config.max_connections_per_user,
                max_rooms: config.max_rooms_per_connection,
                send_queue: config.send_queue,
            })),
            fanout,
            policies: RwLock::default(),
            config,
        })
    }

    /// Lets `policy` decide for rooms whose name starts with `prefix` (the longest
    /// matching prefix decides). Call it from a plugin's `on_start`.
    pub fn allow(&self, prefix: impl Into<String>, policy: impl RoomPolicy) {
        let mut policies = self.policies.write().unwrap_or_else(|p| p.into_inner());
        policies.push((prefix.into(), Arc::new(policy)));
        policies.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
    }

    /// The policy for `room`, if any covers it.
    fn policy_for(&self, room: &str) -> Option<Arc<dyn RoomPolicy>> {
        self.policies
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(prefix, _)| room.starts_with(prefix.as_str()))
            .map(|(_, policy)| policy.clone())
    }

    /// Sends `{"type":"push","topic","data"}` to every socket of `user_id`, on every
    /// instance. Nobody connected is not an error: pushes are not stored.
    pub async fn push_to_user(
        &self,
        user_id: i64,
        topic: &str,
        data: &impl Serialize,
    ) -> crate::Result<()> {
        let frame = push_frame(topic, None, data)?;
        self.send(Target::User(user_id), frame).await
    }

    /// Sends `{"type":"push","topic","room","data"}` to every socket in `room`, on
    /// every instance.
    pub async fn push_to_room(
        &self,
        room: &str,
        topic: &str,
        data: &impl Serialize,
    ) -> crate::Result<()> {
        let frame = push_frame(topic, Some(room), data)?;
        self.send(Target::Room(room.to_owned()), frame).await
    }

    /// Closes the sockets of a user's session (`None`: of all their sessions) with
    /// [`CloseCode::SessionEnded`], on every instance.
    pub async fn end_sessions(&self, user_id: i64, session_id: Option<&str>) -> crate::Result<()> {
        let target = Target::EndSessions(user_id, session_id.map(str::to_owned));
        self.send(target, String::new()).await
    }

    /// Open sockets on this instance.
    pub fn connections(&self) -> usize {
        self.hub.len()
    }

    /// Delivers here at once, then to the other instances.
    async fn send(&self, target: Target, frame: String) -> crate::Result<()> {
        let frame: Frame = frame.into();
        target.deliver(&self.hub, &frame);
        if let Some(fanout) = &self.fanout {
            fanout.publish(&target, &frame).await?;
        }
        Ok(())
    }
}

/// The text of a push frame.
fn push_frame(topic: &str, room: Option<&str>, data: &impl Serialize) -> crate::Result<String> {
    let data = serde_json::to_value(data)
        .map_err(|e| crate::Error::internal(format!("push data: {e}")))?;
    Ok(ServerFrame::Push {
        topic,
        room,
        data: &data,
    }
    .to_text())
}

/// The built-in plugin serving `GET /ws` and keeping the [`Relay`] in the context.
pub struct RealtimePlugin;

crate::register_plugin!(RealtimePlugin);

#[async_trait::async_trait]
impl crate::Plugin for RealtimePlugin {
    fn name(&self) -> &'static str {
        "realtime"
    }

    fn routes(&self, cfg: &mut web::ServiceConfig) {
        use crate::api::{Access, ApiRoutes, Spec};
        ApiRoutes::new(cfg)
            .get(
                "/ws",
                "WebSocket upgrade for real-time pushes and rooms (token in Authorization or the `bearer.<token>` subprotocol)",
                Access::User,
                socket::upgrade,
            )
            .with(
                Spec::new()
                    .empty(101, "Switching to the WebSocket protocol of the real-time guide")
                    .errors(&[
                        (400, "not_websocket"),
                        (429, "too_many_connections"),
                        (503, "relay_full"),
                    ]),
            );
    }

    async fn on_start(&self, ctx: &AppContext) -> crate::Result<()> {
        let config = ctx.config().get::<RealtimeConfig>()?;
        if !config.enabled {
            return Ok(());
        }
        metrics::init();
        let redis = ctx.get::<crate::kv::RedisClient>();
        ctx.insert(Relay::new((*config).clone(), redis.as_deref())?);
        ctx.events()
            .on::<SessionEnded, _, _>("realtime", |ctx, ended| async move {
                if let Some(relay) = ctx.get::<Relay>() {
                    let ended = ended.event;
                    relay
                        .end_sessions(ended.user_id, ended.session_id.as_deref())
                        .await?;
                }
                Ok(())
            });
        Ok(())
    }

    fn background_tasks(&self, ctx: &AppContext) -> Vec<BackgroundTask> {
        let Some(relay) = ctx.get::<Relay>() else {
            return Vec::new();
        };
        let mut tasks = Vec::new();
        if let Some(fanout) = relay.fanout.clone() {
            let hub = relay.hub.clone();
            tasks.push(BackgroundTask::new("realtime-fanout", move |_ctx, stop| {
                fanout.run(hub, stop)
            }));
        }
        let hub = relay.hub.clone();
        tasks.push(BackgroundTask::new(
            "realtime-close-on-stop",
            move |ctx, stop| async move {
                let stopping =
                    (*ctx.get_or_insert_with(crate::shutdown::Stopping::default)).clone();
                tokio::select! {
                    _ = stopping.wait() => {}
                    _ = stop.wait() => {}
                }
                let closed = hub.close_all(CloseCode::GoingAway);
                if closed > 0 {
                    tracing::info!(closed, "closing WebSockets: going away");
                }
            },
        ));
        tasks
    }
}
