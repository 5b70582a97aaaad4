//! The application builder: config + registered plugins -> a running actix-web server.
//!
//! ```no_run
//! #[tokio::main]
//! async fn main() -> weapp::Result<()> {
//!     weapp::App::from_env()?.run().await
//! }
//! ```

mod reload;
mod server;

use std::sync::Arc;

pub use crate::context::{AppContext, BuildInfo};
pub use reload::{ConfigSource, LiveConfig, LiveSettings};
pub use server::Server;

use crate::cli::{Cli, Command, ConfigCommand, CryptoCommand};
use crate::config::{Config, ConfigLoader};
use crate::db::rotate::RotationReport;
use crate::db::{Db, Migration, MigrationReport, MigrationSet};
use crate::kv::KvStore;
use crate::plugin::{self, Plugin};
use weapp_crypto::FieldCrypto;

/// Migrations of the framework itself; they run before every plugin's.
const FRAMEWORK_MIGRATIONS: &[Migration] = &[crate::migration!("0001_create_users")];

/// Builds and runs a weapp application.
pub struct App {
    config: Config,
    extra_plugins: Vec<&'static dyn Plugin>,
    version: Option<String>,
    commit: Option<String>,
    kv: Option<Arc<dyn KvStore>>,
    source: Option<ConfigLoader>,
}

impl App {
    /// An app for an already loaded configuration.
    pub fn new(config: Config) -> App {
        App {
            config,
            extra_plugins: Vec::new(),
            version: None,
            commit: None,
            kv: None,
            source: None,
        }
    }

    /// Re-reads the configuration from `loader` on SIGHUP (the `from_env*`
    /// constructors set this); see [`AppContext::reload`].
    pub fn reload_from(mut self, loader: ConfigLoader) -> Self {
        self.source = Some(loader);
        self
    }

    /// Loads the configuration from `config/` and `WEAPP__*` variables.
    pub fn from_env() -> crate::Result<App> {
        let loader = Config::loader();
        Ok(App::new(loader.clone().load()?).reload_from(loader))
    }

    /// Like [`App::from_env`], with the app's own defaults (TOML compiled into the
    /// binary) layered just above the framework's.
    pub fn from_env_with_defaults(defaults_toml: &str) -> crate::Result<App> {
        let loader = Config::loader().defaults_toml(defaults_toml);
        Ok(App::new(loader.clone().load()?).reload_from(loader))
    }

    /// Adds a plugin besides those registered with `register_plugin!` (as bevy's
    /// `add_plugins`); useful for app-local plugins and tests.
    pub fn add_plugin(mut self, plugin: &'static dyn Plugin) -> Self {
        self.extra_plugins.push(plugin);
        self
    }

    /// Sets the version `/healthz` reports, e.g. `env!("CARGO_PKG_VERSION")`.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// Sets the commit `/healthz` reports as the app's `git_hash`, e.g.
    /// `env!("APP_GIT_HASH")` from the app's build script; empty means `unknown`.
    pub fn commit(mut self, commit: impl Into<String>) -> Self {
        self.commit = Some(commit.into()).filter(|c| !c.is_empty());
        self
    }

    /// Uses this key-value store instead of the one `[redis]` configures.
    pub fn kv_store(mut self, kv: Arc<dyn KvStore>) -> Self {
        self.kv = Some(kv);
        self
    }

    /// The configuration the app will run with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The plugins' commands, as `--help` lists them after the built-in ones.
    fn plugin_commands_help(&self) -> String {
        let lines: Vec<String> = self
            .plugins()
            .unwrap_or_default()
            .iter()
            .flat_map(|plugin| {
                plugin.commands().iter().map(|(name, help)| {
                    format!("  {:<22}{help}", format!("{} {name}", plugin.name()))
                })
            })
            .collect();
        match lines.is_empty() {
            true => String::new(),
            false => format!("Plugin commands:\n{}", lines.join("\n")),
        }
    }

    /// The enabled plugins in start order, or why they cannot start.
    pub fn plugins(&self) -> Result<Vec<&'static dyn Plugin>, plugin::PluginError> {
        let mut all = plugin::registered();
        all.extend(self.extra_plugins.iter().copied());
        plugin::resolve(&all, &self.config.plugins.disabled)
    }

    /// Runs the command line: `serve` (default), `migrate`, `config check`, or a
    /// plugin's command (listed by `--help`).
    pub async fn run(self) -> crate::Result<()> {
        use clap::{CommandFactory, FromArgMatches};
        let mut cli = Cli::command();
        let plugin_help = self.plugin_commands_help();
        if !plugin_help.is_empty() {
            cli = cli.after_help(plugin_help);
        }
        let parsed = Cli::from_arg_matches(&cli.get_matches()).unwrap_or_else(|e| e.exit());
        match parsed.command.unwrap_or(Command::Serve) {
            Command::Serve => self.serve().await,
            Command::Migrate => {
                crate::observe::init_cli_logging(&self.config);
                let report = self.migrate().await?;
                println!(
                    "applied {} migration(s), {} already applied",
                    report.applied.len(),
                    report.already_applied
                );
                for (owner, version) in report.applied {
                    println!("  {owner}/{version}");
                }
                Ok(())
            }
            Command::Crypto(CryptoCommand::Rotate { batch_size }) => {
                crate::observe::init_cli_logging(&self.config);
                let report = self.rotate_keys(batch_size).await?;
                println!(
                    "scanned {}, rotated {}, already current {}, changed concurrently {}, failed {}",
                    report.scanned, report.rotated, report.current, report.raced, report.failed
                );
                if report.failed > 0 || report.raced > 0 {
                    return Err(crate::Error::internal(
                        "some values were not rotated; see the log, then run again",
                    ));
                }
                Ok(())
            }
            #[cfg(feature = "sandbox")]
            Command::Sandbox { host, port } => {
                crate::observe::init_logging(&self.config);
                let wechat = self.config.get::<crate::wechat::WechatConfig>()?;
                let sandbox = crate::wechat::sandbox::Sandbox::new(
                    &wechat.appid,
                    wechat.secret.expose(),
                    wechat.sandbox_settings.risky_words.clone(),
                );
                let (addr, server) = sandbox.serve(&host, port)?;
                tracing::info!("WeChat API sandbox listening on http://{addr}");
                Ok(server.await?)
            }
            Command::Plugin(args) => {
                crate::observe::init_cli_logging(&self.config);
                self.plugin_command(&args).await
            }
            Command::Openapi => {
                println!("{:#}", self.openapi()?);
                Ok(())
            }
            Command::Sdk { dir } => {
                let sdk = crate::sdk::Sdk::for_document(&self.openapi()?);
                sdk.write(&dir)?;
                println!(
                    "wrote the mini-program SDK for this app's routes to {}",
                    dir.display()
                );
                Ok(())
            }
            Command::Config(ConfigCommand::Check) => {
                let plugins = self.plugins()?;
                println!("# environment: {}", self.config.environment);
                println!(
                    "# plugins (start order): {}",
                    plugins
                        .iter()
                        .map(|p| p.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                print!("{}", self.config.redacted_toml());
                println!("# configuration OK");
                Ok(())
            }
        }
    }

    /// The app's OpenAPI document, as `GET /api/openapi.json` serves it, built from
    /// the enabled plugins' routes without connecting to anything.
    pub fn openapi(&self) -> crate::Result<serde_json::Value> {
        let operations = server::documented_operations(&self.plugins()?);
        let build = build_info(self.version.clone(), self.commit.clone());
        Ok(crate::api::document(
            &operations,
            crate::api::TITLE,
            &build.version,
        ))
    }

    /// Builds the server and serves until SIGTERM/SIGINT.
    pub async fn serve(self) -> crate::Result<()> {
        self.build().await?.run_until_stopped().await
    }

    /// Applies pending migrations of the framework and every enabled plugin.
    pub async fn migrate(self) -> crate::Result<MigrationReport> {
        let plugins = self.plugins()?;
        let db = Db::connect(&*self.config.get::<crate::db::DatabaseConfig>()?)?;
        Ok(db.migrate(&migration_sets(&plugins)).await?)
    }

    /// Runs `args[0]`'s plugin command with the rest of `args`; see
    /// [`Plugin::command`].
    pub async fn plugin_command(self, args: &[String]) -> crate::Result<()> {
        let plugins = self.plugins()?;
        let name = args.first().map(String::as_str).unwrap_or_default();
        let plugin = plugins.iter().find(|p| p.name() == name).ok_or_else(|| {
            crate::Error::internal(format!(
                "unknown command {name:?}; plugins: {}",
                plugins
                    .iter()
                    .map(|p| p.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        let db = Db::connect(&*self.config.get::<crate::db::DatabaseConfig>()?)?;
        let kv = match self.kv {
            Some(kv) => kv,
            None => crate::kv::connect(&*self.config.get::<crate::kv::RedisConfig>()?)?,
        };
        let crypto = build_crypto(&self.config)?;
        let build = build_info(self.version, self.commit);
        let ctx = AppContext::new(self.config, db, kv, crypto, build);
        plugin.command(&ctx, &args[1..]).await
    }

    /// Re-seals every value of every plugin's sealed columns under the active key.
    pub async fn rotate_keys(self, batch_size: u32) -> crate::Result<RotationReport> {
        let plugins = self.plugins()?;
        let crypto = build_crypto(&self.config)?.ok_or(weapp_crypto::FieldError::NotConfigured)?;
        let db = Db::connect(&*self.config.get::<crate::db::DatabaseConfig>()?)?;
        let columns: Vec<_> = plugins
            .iter()
            .flat_map(|p| p.sealed_columns().iter().copied())
            .collect();
        Ok(crate::db::rotate::rotate_keys(&db, &crypto, &columns, batch_size).await?)
    }

    /// Connects, migrates (if `database.migrate_on_start`), starts plugins and binds
    /// the listener; the returned [`Server`] knows its port and serves once awaited.
    pub async fn build(self) -> crate::Result<Server> {
        crate::observe::init_logging(&self.config);
        let plugins = self.plugins()?;
        tracing::info!(
            plugins = %plugins.iter().map(|p| p.name()).collect::<Vec<_>>().join(","),
            "resolved plugins"
        );
        let db = Db::connect(&*self.config.get::<crate::db::DatabaseConfig>()?)?;
        let redis_config = self.config.get::<crate::kv::RedisConfig>()?;
        let redis = match redis_config.url {
            Some(_) => Some(crate::kv::RedisClient::open(&redis_config)?),
            None => None,
        };
        let kv: Arc<dyn KvStore> = match self.kv {
            Some(kv) => kv,
            None => crate::kv::store_on(redis.as_ref())?,
        };
        if self
            .config
            .get::<crate::db::DatabaseConfig>()?
            .migrate_on_start
        {
            let report = db.migrate(&migration_sets(&plugins)).await?;
            tracing::info!(
                applied = report.applied.len(),
                already_applied = report.already_applied,
                "migrations done"
            );
        }
        let build = build_info(self.version, self.commit);
        let crypto = build_crypto(&self.config)?;
        let server = &self.config.server;
        let listener = std::net::TcpListener::bind((server.host.as_str(), server.port))?;
        let addr = listener.local_addr()?;
        let wechat = crate::wechat::WechatServices::build(&self.config, addr, kv.clone())?;
        let ctx = AppContext::new(self.config, db, kv, crypto, build);
        if let Some(client) = &redis {
            // For plugins with Redis work of their own (`ctx.get::<RedisClient>()`).
            ctx.insert(client.clone());
        }
        let events = ctx.config().get::<crate::events::EventsConfig>()?;
        if let Some(client) = redis.filter(|_| events.uses_redis(&redis_config)) {
            let relay = crate::events::stream::StreamRelay::new(client, &events)?;
            tracing::info!(
                stream = relay.key(),
                consumer = relay.consumer(),
                "shared events relayed through Redis"
            );
            ctx.events().set_relay(Arc::new(relay));
        }
        wechat.install(&ctx);
        if ctx
            .config()
            .get::<crate::observe::ObserveConfig>()?
            .metrics_enabled
        {
            ctx.insert(crate::observe::metrics::Metrics::new());
        }
        ctx.insert(crate::plugin::EnabledPlugins(plugins.clone()));
        ctx.insert(crate::observe::rate::RequestRate::default());
        ctx.insert(reload::LiveState::new(ctx.config()));
        ctx.insert(crate::health::LastReload::default());
        crate::guard::live(&ctx);
        if let Some(loader) = self.source {
            ctx.insert(ConfigSource(loader));
        }
        for plugin in &plugins {
            plugin.on_start(&ctx).await?;
        }
        if let Some(relay) = ctx.events().relay()
            && let Err(e) = relay.create_groups(&ctx).await
        {
            // The app starts unready while Redis is down; each consumer creates its
            // group once Redis answers.
            tracing::warn!(error = %e, "could not create the event relay's consumer groups yet");
        }
        Server::start(ctx, plugins, listener, wechat.sandbox)
    }
}

/// Builds the app's field crypto from `[crypto]`; it lives in the app's context.
fn build_crypto(config: &Config) -> crate::Result<Option<Arc<FieldCrypto>>> {
    Ok(config
        .crypto
        .build(&config.environment)
        .map_err(|e| crate::config::ConfigError::Load(format!("crypto: {e}")))?
        .map(Arc::new))
}

/// The running build: the app's version if given, else the framework's.
/// The commit the framework was built from (its build script's `git rev-parse`, or
/// `WEAPP_GIT_HASH`), or `unknown`.
pub const FRAMEWORK_GIT_HASH: &str = env!("WEAPP_GIT_HASH");

fn build_info(version: Option<String>, commit: Option<String>) -> BuildInfo {
    BuildInfo {
        version: version.unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_owned()),
        git_hash: commit.unwrap_or_else(|| "unknown".to_owned()),
        framework_version: env!("CARGO_PKG_VERSION").to_owned(),
        framework_git_hash: FRAMEWORK_GIT_HASH.to_owned(),
    }
}

fn migration_sets(plugins: &[&'static dyn Plugin]) -> Vec<MigrationSet> {
    std::iter::once(MigrationSet {
        owner: "weapp",
        migrations: FRAMEWORK_MIGRATIONS,
    })
    .chain(plugins.iter().map(|p| MigrationSet {
        owner: p.name(),
        migrations: p.migrations(),
    }))
    .collect()
}
