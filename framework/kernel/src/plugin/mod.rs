//! Plugins: the unit of features in weapp.
//!
//! A plugin crate defines a unit struct implementing [`Plugin`] and registers it with
//! [`register_plugin!`](crate::register_plugin), which submits it to an `inventory`
//! registry at compile time. The app collects every registered plugin, drops those named
//! in `plugins.disabled`, and orders the rest by [`Plugin::dependencies`]
//! (see [`resolve`]). Registration holds only a `&'static` unit struct; state is built
//! in [`Plugin::on_start`] and stored in the [`crate::AppContext`].
//!
//! The linker drops a crate that nothing references, registration included, so an app
//! must mention each plugin crate it wants: `use weapp_order as _;`.

mod registry;
mod task;

use actix_web::web;

pub use crate::shutdown::Shutdown;
pub use registry::{PluginError, registered, resolve};
pub use task::BackgroundTask;

use crate::AppContext;
use crate::db::Migration;

/// A feature packaged for weapp: routes, migrations, a start-up hook and background tasks.
#[async_trait::async_trait]
pub trait Plugin: Send + Sync + 'static {
    /// Unique name; also the config section and migration owner, e.g. `order`.
    fn name(&self) -> &'static str;

    /// Names of plugins that must start (and migrate) before this one.
    fn dependencies(&self) -> &'static [&'static str] {
        &[]
    }

    /// Registers routes. Runs once per server worker, so it must only wire handlers;
    /// shared state belongs in [`Plugin::on_start`].
    fn routes(&self, _cfg: &mut web::ServiceConfig) {}

    /// Registers this plugin's part of the offline WeChat sandbox (WeChat Pay's paths,
    /// say). Called, like [`Plugin::routes`], once per worker, and only when the app
    /// mounts the embedded sandbox (`wechat.sandbox`, development only); the
    /// sandbox's state belongs in [`Plugin::on_start`].
    fn sandbox_routes(&self, _cfg: &mut web::ServiceConfig) {}

    /// Migrations owned by this plugin, in order; see [`migration!`](crate::migration).
    fn migrations(&self) -> &'static [Migration] {
        &[]
    }

    /// Sealed columns this plugin owns, visited by `crypto rotate`.
    fn sealed_columns(&self) -> &'static [crate::db::rotate::SealedColumnInfo] {
        &[]
    }

    /// Runs once at start-up, after migrations and before serving, in dependency order.
    /// Build services here and store them with [`AppContext::insert`].
    async fn on_start(&self, _ctx: &AppContext) -> crate::Result<()> {
        Ok(())
    }

    /// The personal data this plugin holds about `user_id`, decrypted, for
    /// `GET /api/me/export` (PIPL access right); `None` when it holds none.
    async fn export_user(
        &self,
        _ctx: &AppContext,
        _user_id: i64,
    ) -> crate::Result<Option<serde_json::Value>> {
        Ok(None)
    }

    /// Removes the personal data this plugin holds about `user_id`, for
    /// `DELETE /api/me` (PIPL erasure): sealed values and blind indexes go, records
    /// the business must keep (orders) stay anonymised. Runs dependents first.
    async fn erase_user(&self, _ctx: &AppContext, _user_id: i64) -> crate::Result<()> {
        Ok(())
    }

    /// The commands [`Plugin::command`] understands, as `(name, one line of help)`,
    /// listed by the binary's `--help` as `<plugin> <name>`.
    fn commands(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }

    /// Runs this plugin's command line, `app <plugin name> <args...>` (e.g.
    /// `audit verify`), with a context that has the database, key-value store and
    /// field crypto but no server and no `on_start` services. Prints its own output;
    /// an `Err` makes the process exit non-zero.
    async fn command(&self, _ctx: &AppContext, args: &[String]) -> crate::Result<()> {
        Err(crate::Error::internal(format!(
            "plugin {} has no command {:?}",
            self.name(),
            args.first().map(String::as_str).unwrap_or("")
        )))
    }

    /// Long-running tasks started after every `on_start`; each is told to stop through
    /// its [`Shutdown`] when the server shuts down.
    fn background_tasks(&self, _ctx: &AppContext) -> Vec<BackgroundTask> {
        Vec::new()
    }
}

/// The app's enabled plugins in start (dependency) order, stored in the
/// [`AppContext`] so features spanning plugins (data export, erasure) can reach them.
#[derive(Clone)]
pub struct EnabledPlugins(pub Vec<&'static dyn Plugin>);

/// A plugin as submitted to the compile-time registry.
pub struct PluginRegistration(pub &'static dyn Plugin);

inventory::collect!(PluginRegistration);

/// Registers a plugin value (a `const`-constructible unit struct) with the app.
///
/// ```no_run
/// use weapp::actix_web::{HttpResponse, web};
///
/// pub struct HelloPlugin;
/// weapp::register_plugin!(HelloPlugin);
///
/// impl weapp::Plugin for HelloPlugin {
///     fn name(&self) -> &'static str {
///         "hello"
///     }
///     fn routes(&self, cfg: &mut web::ServiceConfig) {
///         cfg.route("/hello", web::get().to(|| async { HttpResponse::Ok().body("hi") }));
///     }
/// }
/// ```
#[macro_export]
macro_rules! register_plugin {
    ($plugin:expr) => {
        $crate::inventory::submit! {
            $crate::plugin::PluginRegistration(&$plugin)
        }
    };
}

impl std::fmt::Debug for dyn Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Plugin({})", self.name())
    }
}
