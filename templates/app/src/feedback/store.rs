//! Reading and writing feedback, on whichever backend the app runs.

use diesel::prelude::*;
use serde::Serialize;
use weapp::db::{Db, DbError};
use weapp::diesel_async::RunQueryDsl;
use weapp::{utoipa, with_conn};

use super::FeedbackConfig;
use super::schema::feedback;

/// One piece of feedback, as the API shows it.
#[derive(Debug, Clone, Serialize, Queryable, utoipa::ToSchema)]
pub struct Feedback {
    /// Its id.
    pub id: i64,
    /// What the user wrote.
    pub body: String,
    /// When, in Unix milliseconds.
    pub created_at: i64,
}

/// A new row of `feedback`.
#[derive(Debug, Insertable)]
#[diesel(table_name = feedback)]
struct NewFeedback<'a> {
    user_id: i64,
    body: &'a str,
    created_at: i64,
}

weapp::insert_returning_id! {
    /// Storing feedback and learning its id, on every backend.
    trait InsertFeedback { fn insert_feedback(&NewFeedback<'_>) } => feedback::table, feedback::id;
}

/// Feedback in the app's database.
pub struct FeedbackStore {
    db: Db,
    config: FeedbackConfig,
}

impl FeedbackStore {
    /// A store on `db` with the plugin's settings.
    pub fn new(db: Db, config: FeedbackConfig) -> Self {
        FeedbackStore { db, config }
    }

    /// The plugin's settings.
    pub fn config(&self) -> &FeedbackConfig {
        &self.config
    }

    /// Stores feedback from `user_id`; returns it with its id.
    pub async fn add(&self, user_id: i64, body: &str) -> weapp::Result<Feedback> {
        let created_at = now_ms();
        let row = NewFeedback {
            user_id,
            body,
            created_at,
        };
        let mut conn = self.db.conn().await?;
        let id = with_conn!(conn, |c| c.insert_feedback(&row).await).map_err(DbError::from)?;
        Ok(Feedback {
            id,
            body: body.to_owned(),
            created_at,
        })
    }

    /// The newest `limit` pieces of feedback from `user_id`, newest first.
    pub async fn of_user(&self, user_id: i64, limit: i64) -> weapp::Result<Vec<Feedback>> {
        let mut conn = self.db.conn().await?;
        let items = with_conn!(conn, |c| {
            feedback::table
                .filter(feedback::user_id.eq(user_id))
                .order(feedback::id.desc())
                .select((feedback::id, feedback::body, feedback::created_at))
                .limit(limit)
                .load::<Feedback>(c)
                .await
        })
        .map_err(DbError::from)?;
        Ok(items)
    }

    /// Deletes everything `user_id` wrote (the erasure right).
    pub async fn erase_user(&self, user_id: i64) -> weapp::Result<()> {
        let mut conn = self.db.conn().await?;
        with_conn!(conn, |c| {
            diesel::delete(feedback::table.filter(feedback::user_id.eq(user_id)))
                .execute(c)
                .await
        })
        .map_err(DbError::from)?;
        Ok(())
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
