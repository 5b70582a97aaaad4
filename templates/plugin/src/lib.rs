//! The `{{plugin_name}}` plugin: each logged-in user keeps a list of items.
//!
//! An app links it by naming the crate once (`use {{crate_name}} as _;`); the
//! plugin then registers its routes, migrations and config section by itself.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use weapp::actix_web::{HttpResponse, web};
use weapp::api::{Access, ApiRoutes};
use weapp::auth::AuthUser;
use weapp::config::ConfigSection;
use weapp::db::{Db, DbError};
use weapp::diesel_async::RunQueryDsl;
use weapp::{AppContext, Error, Plugin, with_conn};

/// `[{{plugin_name}}]` settings (environment: `WEAPP__{{plugin_name | upcase}}__*`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Longest accepted item title, in characters.
    pub max_title_chars: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_title_chars: 100,
        }
    }
}

impl ConfigSection for Settings {
    const NAME: &'static str = "{{plugin_name}}";
}
weapp::config_section!(Settings);

diesel::table! {
    /// Items of users.
    {{plugin_name}}_items (id) {
        /// Primary key.
        id -> BigInt,
        /// The owner.
        user_id -> BigInt,
        /// What the item says.
        title -> Text,
        /// Unix milliseconds.
        created_at -> BigInt,
    }
}

use self::{{plugin_name}}_items as items;

/// The plugin, registered at compile time.
pub struct ItemsPlugin;

weapp::register_plugin!(ItemsPlugin);

const MIGRATIONS: &[weapp::db::Migration] = &[weapp::migration!("0001_create_{{plugin_name}}_items")];

/// What `on_start` builds for the handlers.
struct ItemsService {
    db: Db,
    settings: Settings,
}

#[weapp::async_trait::async_trait]
impl Plugin for ItemsPlugin {
    fn name(&self) -> &'static str {
        "{{plugin_name}}"
    }

    fn dependencies(&self) -> &'static [&'static str] {
        &["auth"]
    }

    fn routes(&self, cfg: &mut web::ServiceConfig) {
        ApiRoutes::new(cfg)
            .post("/api/{{plugin_name}}/items", "Add an item", Access::User, add_item)
            .get(
                "/api/{{plugin_name}}/items",
                "The caller's items, newest first",
                Access::User,
                list_items,
            );
    }

    fn migrations(&self) -> &'static [weapp::db::Migration] {
        MIGRATIONS
    }

    async fn on_start(&self, ctx: &AppContext) -> weapp::Result<()> {
        let settings = (*ctx.config().get::<Settings>()?).clone();
        ctx.insert(ItemsService {
            db: ctx.db().clone(),
            settings,
        });
        Ok(())
    }

    async fn erase_user(&self, ctx: &AppContext, user_id: i64) -> weapp::Result<()> {
        let mut conn = service(ctx)?.db.conn().await?;
        with_conn!(conn, |c| {
            diesel::delete(items::table.filter(items::user_id.eq(user_id)))
                .execute(c)
                .await
        })
        .map_err(DbError::from)?;
        Ok(())
    }
}

fn service(ctx: &AppContext) -> weapp::Result<std::sync::Arc<ItemsService>> {
    ctx.get::<ItemsService>()
        .ok_or_else(|| Error::internal("the {{plugin_name}} plugin has not started"))
}

/// `POST /api/{{plugin_name}}/items` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewItem {
    title: String,
}

/// An item as the API shows it.
#[derive(Debug, Serialize, Queryable)]
struct Item {
    id: i64,
    title: String,
    created_at: i64,
}

async fn add_item(
    ctx: AppContext,
    user: AuthUser,
    body: web::Json<NewItem>,
) -> Result<HttpResponse, Error> {
    let service = service(&ctx)?;
    let title = body.title.trim();
    let max = service.settings.max_title_chars;
    if title.is_empty() || title.chars().count() > max {
        return Err(Error::unprocessable(
            "invalid_item",
            format!("title must be 1 to {max} characters"),
        ));
    }
    let created_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    let mut conn = service.db.conn().await?;
    with_conn!(conn, |c| {
        diesel::insert_into(items::table)
            .values((
                items::user_id.eq(user.user_id),
                items::title.eq(title),
                items::created_at.eq(created_at),
            ))
            .execute(c)
            .await
    })
    .map_err(DbError::from)?;
    Ok(HttpResponse::Created().json(serde_json::json!({ "title": title })))
}

async fn list_items(ctx: AppContext, user: AuthUser) -> Result<HttpResponse, Error> {
    let mut conn = service(&ctx)?.db.conn().await?;
    let rows = with_conn!(conn, |c| {
        items::table
            .filter(items::user_id.eq(user.user_id))
            .order(items::id.desc())
            .select((items::id, items::title, items::created_at))
            .limit(100)
            .load::<Item>(c)
            .await
    })
    .map_err(DbError::from)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": rows })))
}
