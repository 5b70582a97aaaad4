//! The plugin's tables, as diesel sees them.

diesel::table! {
    /// The hash-chained log.
    audit_log (id) {
        /// Position in the chain, 1, 2, 3... without gaps.
        id -> BigInt,
        /// Unix milliseconds.
        at -> BigInt,
        /// Who acted: `user:42`, `admin`, `payment`, `system`.
        actor -> Text,
        /// What happened: `auth.login`, `order.paid`...
        action -> Text,
        /// What it happened to: `order:17`, `user:42`.
        target -> Text,
        /// The request that caused it, when there was one.
        request_id -> Nullable<Text>,
        /// JSON details; `NULL` once archived.
        details -> Nullable<Text>,
        /// SM3 of the details, kept when they are archived.
        details_hash -> Text,
        /// The recorded event's id, for deduplication.
        event_id -> Nullable<Text>,
        /// The previous row's hash.
        prev_hash -> Text,
        /// SM3 over the canonical content, see `chain`.
        hash -> Text,
    }
}

diesel::table! {
    /// Where the chain ends.
    audit_chain_head (id) {
        /// Always 1.
        id -> Integer,
        /// Id of the last row.
        last_id -> BigInt,
        /// Hash of the last row.
        last_hash -> Text,
    }
}

diesel::table! {
    /// Details moved out of the live log by retention.
    audit_archive (id) {
        /// The log row's id.
        id -> BigInt,
        /// The log row's time.
        at -> BigInt,
        /// The log row's action.
        action -> Text,
        /// The details that were in the log row.
        details -> Text,
        /// Unix milliseconds.
        archived_at -> BigInt,
    }
}

diesel::table! {
    /// Recorded rows waiting to be chained.
    audit_pending (id) {
        /// Staging order, which becomes chain order.
        id -> BigInt,
        /// Unix milliseconds.
        at -> BigInt,
        /// Who acted.
        actor -> Text,
        /// What happened.
        action -> Text,
        /// To what.
        target -> Text,
        /// The request, if any.
        request_id -> Nullable<Text>,
        /// JSON details.
        details -> Text,
        /// The recorded event's id.
        event_id -> Nullable<Text>,
    }
}
