//! `[realtime]`: the WebSocket relay's limits and timers.

use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigIssue, ConfigSection};

/// `[realtime]` configuration. Every limit is per app instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RealtimeConfig {
    /// Serve `GET /ws`; when off it answers 404 and `Relay` pushes go nowhere.
    pub enabled: bool,
    /// Open sockets on this instance; the next upgrade gets 503 `relay_full`.
    pub max_connections: usize,
    /// Open sockets of one user on this instance; the next gets 429
    /// `too_many_connections`.
    pub max_connections_per_user: usize,
    /// Largest client message in bytes (after joining continuation frames); a larger
    /// one closes the socket with 1009.
    pub max_message_bytes: usize,
    /// Client messages per second per socket (also the burst); those over it are
    /// answered with a `rate_limited` error and dropped.
    pub messages_per_second: u32,
    /// Rooms one socket may be in at a time.
    pub max_rooms_per_connection: usize,
    /// Frames waiting for a client that does not read; one more drops the socket
    /// (close 4008), so a slow reader never makes the server buffer without bound.
    pub send_queue: usize,
    /// A WebSocket ping is sent this often.
    pub heartbeat_interval_ms: u64,
    /// A socket that sent nothing (not even a pong) for this long is closed (4009).
    pub idle_timeout_ms: u64,
    /// How often each socket checks that its session still lives, besides the
    /// immediate close on logout: catches sessions that expired or were revoked by
    /// refresh-token reuse.
    pub session_check_interval_ms: u64,
    /// With `redis.url` set, pushes and room messages reach sockets on every instance
    /// through this many newest entries of a Redis stream (`<key_prefix>realtime`);
    /// an instance that falls further behind misses the oldest.
    pub stream_max_len: usize,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        RealtimeConfig {
            enabled: true,
            max_connections: 20_000,
            max_connections_per_user: 5,
            max_message_bytes: 4096,
            messages_per_second: 10,
            max_rooms_per_connection: 20,
            send_queue: 256,
            heartbeat_interval_ms: 20_000,
            idle_timeout_ms: 60_000,
            session_check_interval_ms: 30_000,
            stream_max_len: 10_000,
        }
    }
}

impl ConfigSection for RealtimeConfig {
    const NAME: &'static str = "realtime";

    fn issues(&self, _config: &Config) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let positive = [
            ("max_connections", self.max_connections as u64),
            (
                "max_connections_per_user",
                self.max_connections_per_user as u64,
            ),
            ("max_message_bytes", self.max_message_bytes as u64),
            ("messages_per_second", u64::from(self.messages_per_second)),
            (
                "max_rooms_per_connection",
                self.max_rooms_per_connection as u64,
            ),
            ("send_queue", self.send_queue as u64),
            ("heartbeat_interval_ms", self.heartbeat_interval_ms),
            ("session_check_interval_ms", self.session_check_interval_ms),
            ("stream_max_len", self.stream_max_len as u64),
        ];
        for (key, value) in positive {
            if value == 0 {
                issues.push(ConfigIssue::new(
                    format!("realtime.{key}"),
                    "must be greater than 0",
                ));
            }
        }
        if self.idle_timeout_ms <= self.heartbeat_interval_ms {
            issues.push(ConfigIssue::new(
                "realtime.idle_timeout_ms",
                "must be longer than realtime.heartbeat_interval_ms, or every socket idles out",
            ));
        }
        issues
    }
}

crate::config_section!(RealtimeConfig);
