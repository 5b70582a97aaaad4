//! `Messages`: the plugin's service, stored in the app context by `on_start`.

use weapp::db::Db;
use weapp::queue::LeaseQueue;

use crate::config::MessageConfig;

/// Templates, quotas and the send queue. Plugins and apps reach it with
/// `ctx.get::<Messages>()` and call [`Messages::send`].
pub struct Messages {
    pub(crate) config: MessageConfig,
    pub(crate) db: Db,
    /// The send queue.
    pub(crate) queue: LeaseQueue,
}

impl Messages {
    /// A service over `db`.
    pub fn new(config: MessageConfig, db: Db) -> Messages {
        Messages {
            queue: crate::queue::lease_queue(&config),
            config,
            db,
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &MessageConfig {
        &self.config
    }
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
