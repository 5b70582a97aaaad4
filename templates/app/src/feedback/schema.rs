//! The plugin's table, as diesel sees it.

diesel::table! {
    /// Feedback left by users.
    feedback (id) {
        /// Primary key.
        id -> BigInt,
        /// Who left it.
        user_id -> BigInt,
        /// What they wrote.
        body -> Text,
        /// Unix milliseconds.
        created_at -> BigInt,
    }
}
