//! The plugin's tables, as diesel sees them.

diesel::table! {
    /// The app's subscribe templates, cached from WeChat.
    message_templates (template_id) {
        /// WeChat's `priTmplId`.
        template_id -> Text,
        /// Title.
        title -> Text,
        /// Keyword layout, `名称:{{thing1.DATA}}\n...`.
        content -> Text,
        /// 2 one-time, 3 long-term.
        kind -> Integer,
        /// Unix milliseconds.
        synced_at -> BigInt,
    }
}

diesel::table! {
    /// One-time subscription quota per user and template.
    message_quotas (user_id, template_id) {
        /// The user.
        user_id -> BigInt,
        /// The template.
        template_id -> Text,
        /// Sends left.
        remaining -> Integer,
        /// Unix milliseconds.
        updated_at -> BigInt,
    }
}

diesel::table! {
    /// The persistent send queue.
    message_queue (id) {
        /// Primary key.
        id -> BigInt,
        /// Recipient (user id; the openid is looked up when sending).
        user_id -> BigInt,
        /// Template.
        template_id -> Text,
        /// JSON `{"thing1": {"value": "..."}}`.
        data -> Text,
        /// JSON `{"page", "miniprogram_state", "lang"}`.
        options -> Text,
        /// `pending`, `claimed`, `sending`, `sent`, `failed`.
        state -> Text,
        /// Send attempts so far.
        attempts -> Integer,
        /// Not before (Unix milliseconds).
        next_attempt_at -> BigInt,
        /// A worker's claim expires then.
        locked_until -> Nullable<BigInt>,
        /// Random token of the claiming worker.
        claim_token -> Nullable<BigInt>,
        /// WeChat's last errcode.
        errcode -> Nullable<BigInt>,
        /// Why it failed (or was retried).
        reason -> Nullable<Text>,
        /// WeChat's `msgid` once sent.
        msgid -> Nullable<BigInt>,
        /// Unix milliseconds.
        created_at -> BigInt,
        /// Unix milliseconds, once sent or failed.
        finished_at -> Nullable<BigInt>,
        /// The sender's key for this message; unique when set.
        dedupe_key -> Nullable<Text>,
    }
}
