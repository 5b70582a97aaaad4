//! The JSON protocol on `/ws`: one object per text frame, `type` naming it.
//!
//! Client → server: `join`, `leave`, `publish`, `auth` (a refreshed access token),
//! `ping`. Each may carry an `id` (a string or a number), which the server's `ack`
//! or `error` for it repeats. Server → client: `welcome`, `ack`, `error`, `message`
//! (a room's), `push` (from the server), `pong`. Close codes: [`CloseCode`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A client's correlation id, echoed in the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FrameId {
    /// A number.
    Number(i64),
    /// A string.
    Text(String),
}

/// What a client may send.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// Join a room, if the room's policy lets this user.
    Join {
        /// The room, e.g. `live:42`.
        room: String,
        /// Correlation id.
        #[serde(default)]
        id: Option<FrameId>,
    },
    /// Leave a room.
    Leave {
        /// The room.
        room: String,
        /// Correlation id.
        #[serde(default)]
        id: Option<FrameId>,
    },
    /// Send `data` to everyone in a room (on every instance), the sender included.
    Publish {
        /// The room; the sender must have joined it.
        room: String,
        /// Any JSON.
        data: Value,
        /// Correlation id.
        #[serde(default)]
        id: Option<FrameId>,
    },
    /// A refreshed access token of the same session: the socket lives on past the
    /// old token's expiry.
    Auth {
        /// The new access token.
        token: String,
        /// Correlation id.
        #[serde(default)]
        id: Option<FrameId>,
    },
    /// An application-level heartbeat, for clients that cannot see WebSocket pings.
    Ping {
        /// Correlation id.
        #[serde(default)]
        id: Option<FrameId>,
    },
}

/// What the server sends.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    /// First frame on a new socket.
    Welcome {
        /// This socket's id (also in the server's log spans).
        connection_id: &'a str,
        /// The authenticated user.
        user_id: i64,
        /// Seconds until the access token expires; send `auth` before then.
        expires_in: u64,
    },
    /// A request succeeded.
    Ack {
        /// The request's id.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a FrameId>,
    },
    /// A request failed; `code` is stable.
    Error {
        /// The request's id, if it had one and could be read.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a FrameId>,
        /// Stable error code.
        code: &'a str,
        /// Human-readable explanation.
        message: &'a str,
    },
    /// A message published to a room.
    Message {
        /// The room.
        room: &'a str,
        /// The publishing user.
        from: i64,
        /// What they published.
        data: &'a Value,
    },
    /// A push from the server (`Relay::push_to_user` / `push_to_room`).
    Push {
        /// What it is about, e.g. `order.paid`.
        topic: &'a str,
        /// The room it went to, for room pushes.
        #[serde(skip_serializing_if = "Option::is_none")]
        room: Option<&'a str>,
        /// Its content.
        data: &'a Value,
    },
    /// The answer to `ping`.
    Pong {
        /// The ping's id.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a FrameId>,
    },
}

impl ServerFrame<'_> {
    /// The frame as the text sent.
    pub fn to_text(&self) -> String {
        // Only strings, numbers and already valid JSON values: cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Why the server closes a socket; the WebSocket close code and reason clients see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCode {
    /// 1000: the client closed.
    Normal,
    /// 1001 `going_away`: the server is shutting down; reconnect (to another instance).
    GoingAway,
    /// 1002 `protocol_error`: a malformed WebSocket frame.
    ProtocolError,
    /// 1009 `message_too_big`: a message over `realtime.max_message_bytes`.
    MessageTooBig,
    /// 4001 `session_ended`: logout, logout-all, account erased, or session revoked;
    /// log in again.
    SessionEnded,
    /// 4002 `token_expired`: the access token expired and no `auth` frame renewed it;
    /// refresh the token and reconnect.
    TokenExpired,
    /// 4008 `too_slow`: the client did not read its frames fast enough.
    TooSlow,
    /// 4009 `idle_timeout`: nothing received (not even a pong) for
    /// `realtime.idle_timeout_ms`.
    IdleTimeout,
}

impl CloseCode {
    /// The numeric close code.
    pub fn code(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::GoingAway => 1001,
            CloseCode::ProtocolError => 1002,
            CloseCode::MessageTooBig => 1009,
            CloseCode::SessionEnded => 4001,
            CloseCode::TokenExpired => 4002,
            CloseCode::TooSlow => 4008,
            CloseCode::IdleTimeout => 4009,
        }
    }

    /// The close reason sent with it, also the metrics label.
    pub fn reason(self) -> &'static str {
        match self {
            CloseCode::Normal => "normal",
            CloseCode::GoingAway => "going_away",
            CloseCode::ProtocolError => "protocol_error",
            CloseCode::MessageTooBig => "message_too_big",
            CloseCode::SessionEnded => "session_ended",
            CloseCode::TokenExpired => "token_expired",
            CloseCode::TooSlow => "too_slow",
            CloseCode::IdleTimeout => "idle_timeout",
        }
    }
}

/// Room names: 1 to 64 of `A-Z a-z 0-9 : _ - .`, so they are safe in stream
/// entries, metrics-free logs and policies' prefix matching.
pub fn valid_room(room: &str) -> bool {
    (1..=64).contains(&room.len())
        && room
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_parse_and_unknown_ones_do_not() {
        let join: ClientFrame =
            serde_json::from_str(r#"{"type":"join","room":"live:1","id":7}"#).unwrap();
        assert_eq!(
            join,
            ClientFrame::Join {
                room: "live:1".into(),
                id: Some(FrameId::Number(7))
            }
        );
        for bad in [
            r#"{"type":"shout","room":"x"}"#,
            r#"{"type":"join"}"#,
            r#"{"type":"join","room":"x","extra":1}"#,
            r#"{"type":"join","room":"x","id":{"a":1}}"#,
            "[]",
        ] {
            assert!(serde_json::from_str::<ClientFrame>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn server_frames_carry_their_type_and_id() {
        let id = FrameId::Text("a".into());
        let text = ServerFrame::Error {
            id: Some(&id),
            code: "forbidden",
            message: "no",
        }
        .to_text();
        assert_eq!(
            text,
            r#"{"type":"error","id":"a","code":"forbidden","message":"no"}"#
        );
        assert_eq!(ServerFrame::Ack { id: None }.to_text(), r#"{"type":"ack"}"#);
    }

    #[test]
    fn room_names_are_bounded_and_plain() {
        assert!(valid_room("support:42"));
        assert!(valid_room("live.room-1_a"));
        for bad in ["", "a b", "房间", "x\n", &"a".repeat(65), "a*"] {
            assert!(!valid_room(bad), "{bad:?}");
        }
    }
}
