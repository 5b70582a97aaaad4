//! `GET /ws`: authenticate, upgrade, then one task per socket that reads the
//! client's frames, writes what the hub queues for it, pings, and closes it with a
//! [`CloseCode`] when its time is up.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, SEC_WEBSOCKET_PROTOCOL};
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, CloseReason, ProtocolError, Session};
use tokio::time::Instant;
use tracing::Instrument;

use super::fanout::Target;
use super::hub::{Frame, Refusal, Registration, Watch};
use super::protocol::{ClientFrame, CloseCode, FrameId, ServerFrame, valid_room};
use super::{Relay, metrics};
use crate::auth::{AuthError, AuthUser, authenticate, bearer_token};
use crate::{AppContext, Error};

/// The subprotocol the server selects when the client offers it.
const SUBPROTOCOL: &str = "weapp.v1";
/// A subprotocol `bearer.<access token>` carries the token for clients that cannot
/// set `Authorization` on `wx.connectSocket`.
const BEARER_PREFIX: &str = "bearer.";

/// Authenticates and upgrades; the socket is then served by its own task.
pub(super) async fn upgrade(
    req: HttpRequest,
    body: web::Payload,
    ctx: AppContext,
) -> crate::Result<HttpResponse> {
    let relay = ctx
        .get::<Relay>()
        .ok_or_else(|| Error::not_found("the real-time relay is off (realtime.enabled)"))?;
    let offered: Vec<String> = req
        .headers()
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_owned())
        .collect();
    let token = match bearer_token(req.headers()) {
        Some(token) => token.to_owned(),
        None => offered
            .iter()
            .find_map(|p| p.strip_prefix(BEARER_PREFIX))
            .ok_or(AuthError::MissingToken)?
            .to_owned(),
    };
    let (user, claims) = authenticate(&ctx, &token).await?;
    let (mut response, session, stream) = actix_ws::handle(&req, body).map_err(|_| {
        Error::bad_request(
            "not_websocket",
            "GET /ws must be a WebSocket upgrade (Connection: Upgrade, Upgrade: websocket)",
        )
    })?;
    let registration = relay
        .hub
        .register(user.user_id, &user.session_id)
        .map_err(|refusal| match refusal {
            Refusal::UserFull => Error::http(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_connections",
                "this user has realtime.max_connections_per_user sockets open here",
            ),
            Refusal::InstanceFull => Error::unavailable(
                "relay_full",
                "this instance holds realtime.max_connections sockets; try again",
            ),
        })?;
    if offered.iter().any(|p| p == SUBPROTOCOL) {
        response.headers_mut().insert(
            SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(SUBPROTOCOL),
        );
    }
    let expires_at = expiry(claims.exp);
    let socket = Socket::new(ctx, relay, user, registration, expires_at);
    let span = tracing::info_span!("ws", connection_id = %socket.connection_id, user_id = socket.user.user_id);
    // The stream reads the request body: it lives on this worker's thread.
    actix_web::rt::spawn(socket.serve(session, stream).instrument(span));
    Ok(response)
}

/// When a token expiring at `exp` (unix seconds) runs out, on the runtime's clock.
fn expiry(exp: u64) -> Instant {
    let now = u64::try_from(crate::clock::now_s()).unwrap_or(0);
    Instant::now() + Duration::from_secs(exp.saturating_sub(now))
}

/// Client messages per second, with an equal burst.
struct TokenBucket {
    tokens: f64,
    rate: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate: u32) -> Self {
        let rate = f64::from(rate);
        TokenBucket {
            tokens: rate,
            rate,
            last: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.rate);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// One open socket.
struct Socket {
    ctx: AppContext,
    relay: Arc<Relay>,
    user: AuthUser,
    connection_id: String,
    hub_id: u64,
    frames: tokio::sync::mpsc::Receiver<Frame>,
    closed: Watch,
    expires_at: Instant,
    bucket: TokenBucket,
}

impl Socket {
    fn new(
        ctx: AppContext,
        relay: Arc<Relay>,
        user: AuthUser,
        registration: Registration,
        expires_at: Instant,
    ) -> Self {
        Socket {
            bucket: TokenBucket::new(relay.config.messages_per_second),
            ctx,
            relay,
            user,
            connection_id: uuid::Uuid::new_v4().simple().to_string(),
            hub_id: registration.id,
            frames: registration.frames,
            closed: registration.closer.watch(),
            expires_at,
        }
    }

    async fn serve(mut self, mut session: Session, stream: actix_ws::MessageStream) {
        tracing::debug!("socket opened");
        let close = self.run(&mut session, stream).await;
        self.relay.hub.unregister(self.hub_id);
        let code = close.unwrap_or(CloseCode::Normal);
        metrics::closed(code.reason()).inc();
        tracing::debug!(reason = code.reason(), "socket closed");
        if let Some(code) = close {
            let reason = CloseReason {
                code: code.code().into(),
                description: Some(code.reason().to_owned()),
            };
            // A client that does not read cannot take the close frame either.
            let _ = tokio::time::timeout(Duration::from_secs(1), session.close(Some(reason))).await;
        }
    }

    /// Serves until the socket must close; the close code to send (`None`: the
    /// client is gone).
    async fn run(
        &mut self,
        session: &mut Session,
        stream: actix_ws::MessageStream,
    ) -> Option<CloseCode> {
        let config = &self.relay.config;
        let max = config.max_message_bytes;
        let mut stream = stream
            .max_frame_size(max)
            .aggregate_continuations()
            .max_continuation_size(max);
        let heartbeat = Duration::from_millis(config.heartbeat_interval_ms);
        let idle_timeout = Duration::from_millis(config.idle_timeout_ms);
        let check = Duration::from_millis(config.session_check_interval_ms);
        let mut heartbeat = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
        let mut session_check = tokio::time::interval_at(Instant::now() + check, check);
        let mut last_seen = Instant::now();
        let welcome = ServerFrame::Welcome {
            connection_id: &self.connection_id,
            user_id: self.user.user_id,
            expires_in: self
                .expires_at
                .saturating_duration_since(Instant::now())
                .as_secs(),
        }
        .to_text();
        if let Err(close) = self.write(session, welcome).await {
            return close;
        }
        let expiry = tokio::time::sleep_until(self.expires_at);
        tokio::pin!(expiry);
        loop {
            if expiry.deadline() != self.expires_at {
                expiry.as_mut().reset(self.expires_at);
            }
            tokio::select! {
                code = &mut self.closed => return Some(code),
                frame = self.frames.recv() => match frame {
                    Some(frame) => if let Err(close) = self.write_queued(session, frame).await {
                        return close;
                    },
                    None => return Some(CloseCode::GoingAway),
                },
                message = stream.recv() => {
                    last_seen = Instant::now();
                    match message {
                        None => return None,
                        Some(Ok(AggregatedMessage::Text(text))) => {
                            metrics::messages_in().inc();
                            let reply = self.answer(&text).await;
                            if let Err(close) = self.write(session, reply).await {
                                return close;
                            }
                        }
                        Some(Ok(AggregatedMessage::Binary(_))) => {
                            metrics::dropped("binary_not_supported").inc();
                            let reply = error(None, "binary_not_supported", "send JSON text frames");
                            if let Err(close) = self.write(session, reply).await {
                                return close;
                            }
                        }
                        Some(Ok(AggregatedMessage::Ping(bytes))) => {
                            session.pong(&bytes).await.ok()?;
                        }
                        Some(Ok(AggregatedMessage::Pong(_))) => {}
                        Some(Ok(AggregatedMessage::Close(_))) => return Some(CloseCode::Normal),
                        Some(Err(ProtocolError::Overflow)) => return Some(CloseCode::MessageTooBig),
                        // The connection broke (a client that went without a close).
                        Some(Err(ProtocolError::Io(_))) => return None,
                        Some(Err(_)) => return Some(CloseCode::ProtocolError),
                    }
                }
                _ = heartbeat.tick() => {
                    if last_seen.elapsed() >= idle_timeout {
                        return Some(CloseCode::IdleTimeout);
                    }
                    tokio::select! {
                        code = &mut self.closed => return Some(code),
                        sent = session.ping(b"") => sent.ok()?,
                    }
                }
                _ = &mut expiry => return Some(CloseCode::TokenExpired),
                _ = session_check.tick() => {
                    if !self.session_lives().await {
                        return Some(CloseCode::SessionEnded);
                    }
                }
            }
        }
    }

    /// Writes one frame, unless the socket is closed meanwhile (a client that does
    /// not read blocks the write until the hub closes it as too slow). `Err`: stop
    /// with this close code (`None`: the client is gone).
    async fn write(
        &mut self,
        session: &mut Session,
        text: impl Into<Frame>,
    ) -> Result<(), Option<CloseCode>> {
        tokio::select! {
            biased;
            code = &mut self.closed => Err(Some(code)),
            sent = session.text(text.into()) => sent.map_err(|_| None),
        }
    }

    /// Writes `first` and whatever else is queued already (a few at most, so the
    /// client's own frames are read in between): one wake-up for a burst.
    async fn write_queued(
        &mut self,
        session: &mut Session,
        first: Frame,
    ) -> Result<(), Option<CloseCode>> {
        self.write(session, first).await?;
        for _ in 0..32 {
            match self.frames.try_recv() {
                Ok(frame) => self.write(session, frame).await?,
                Err(_) => break,
            }
        }
        Ok(())
    }

    /// Whether the session still lives; a failed check (the store is down) is not
    /// taken as an ended session.
    async fn session_lives(&self) -> bool {
        let Some(auth) = self.ctx.get::<crate::auth::Auth>() else {
            return true;
        };
        let active = auth
            .sessions(self.ctx.kv())
            .active(&self.user.session_id, self.user.user_id)
            .await;
        !matches!(active, Ok(None))
    }

    /// Handles one client frame; the frame to answer with.
    async fn answer(&mut self, text: &str) -> String {
        let frame = match serde_json::from_str::<ClientFrame>(text) {
            Ok(frame) => frame,
            Err(e) => {
                metrics::dropped("invalid_frame").inc();
                return error(None, "invalid_frame", &e.to_string());
            }
        };
        let outcome = match &frame {
            ClientFrame::Ping { .. } => Ok(()),
            _ if !self.bucket.take() => Err((
                "rate_limited",
                "over realtime.messages_per_second; this frame was dropped".to_owned(),
            )),
            ClientFrame::Join { room, .. } => self.join(room).await,
            ClientFrame::Leave { room, .. } => match self.relay.hub.leave(self.hub_id, room) {
                true => Ok(()),
                false => Err(("not_joined", format!("not in room {room}"))),
            },
            ClientFrame::Publish { room, data, .. } => self.publish(room, data).await,
            ClientFrame::Auth { token, .. } => self.reauthenticate(token).await,
        };
        let id = frame_id(&frame);
        match outcome {
            Ok(()) if matches!(frame, ClientFrame::Ping { .. }) => {
                ServerFrame::Pong { id }.to_text()
            }
            Ok(()) => ServerFrame::Ack { id }.to_text(),
            Err((code, message)) => {
                metrics::dropped(code).inc();
                error(id, code, &message)
            }
        }
    }

    async fn join(&self, room: &str) -> Result<(), (&'static str, String)> {
        if !valid_room(room) {
            return Err((
                "invalid_room",
                "room names are 1 to 64 of A-Z a-z 0-9 : _ - .".to_owned(),
            ));
        }
        let allowed = match self.relay.policy_for(room) {
            Some(policy) => policy.may_join(&self.ctx, self.user.user_id, room).await,
            None => false,
        };
        if !allowed {
            return Err(("forbidden", format!("you may not join {room}")));
        }
        self.relay
            .hub
            .join(self.hub_id, room)
            .map(drop)
            .map_err(|()| {
                (
                    "too_many_rooms",
                    "this socket is in realtime.max_rooms_per_connection rooms".to_owned(),
                )
            })
    }

    async fn publish(
        &self,
        room: &str,
        data: &serde_json::Value,
    ) -> Result<(), (&'static str, String)> {
        if !self.relay.hub.is_member(self.hub_id, room) {
            return Err(("not_joined", format!("join {room} before publishing")));
        }
        let allowed = match self.relay.policy_for(room) {
            Some(policy) => policy.may_publish(&self.ctx, self.user.user_id, room).await,
            None => false,
        };
        if !allowed {
            return Err(("forbidden", format!("you may not publish in {room}")));
        }
        let frame = ServerFrame::Message {
            room,
            from: self.user.user_id,
            data,
        }
        .to_text();
        self.relay
            .send(Target::Room(room.to_owned()), frame)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "room message not fanned out");
                (
                    "relay_unavailable",
                    "delivered on this instance only; try again".to_owned(),
                )
            })
    }

    /// Takes a refreshed token of the same session: the socket outlives the old one.
    async fn reauthenticate(&mut self, token: &str) -> Result<(), (&'static str, String)> {
        let (user, claims) = authenticate(&self.ctx, token)
            .await
            .map_err(|e| (e.code(), e.to_string()))?;
        if user != self.user {
            return Err((
                "token_mismatch",
                "the token belongs to another session".to_owned(),
            ));
        }
        self.expires_at = expiry(claims.exp);
        Ok(())
    }
}

fn frame_id(frame: &ClientFrame) -> Option<&FrameId> {
    match frame {
        ClientFrame::Join { id, .. }
        | ClientFrame::Leave { id, .. }
        | ClientFrame::Publish { id, .. }
        | ClientFrame::Auth { id, .. }
        | ClientFrame::Ping { id } => id.as_ref(),
    }
}

fn error(id: Option<&FrameId>, code: &str, message: &str) -> String {
    ServerFrame::Error { id, code, message }.to_text()
}
