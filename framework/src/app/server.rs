//! The bound HTTP server, its background tasks, and graceful shutdown.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::middleware::from_fn;
use actix_web::{HttpServer, web};

use super::AppContext;
use crate::api::{Access, ApiRoutes, Spec};
use crate::plugin::Plugin;

/// A bound server: listening, background tasks running, not yet serving until
/// [`Server::run_until_stopped`] is awaited (zero-to-production's `Application`).
pub struct Server {
    addr: SocketAddr,
    ctx: AppContext,
    server: actix_web::dev::Server,
    metrics_server: Option<actix_web::dev::Server>,
    tasks: Vec<(String, tokio::task::JoinHandle<()>)>,
}

impl Server {
    pub(super) fn start(
        ctx: AppContext,
        plugins: Vec<&'static dyn Plugin>,
        listener: TcpListener,
        sandbox: Option<crate::wechat::EmbeddedSandbox>,
    ) -> crate::Result<Server> {
        let cfg = ctx.config().server.clone();
        let addr = listener.local_addr()?;
        let data = web::Data::new(ctx.clone());
        let routes_plugins = plugins.clone();
        let cors_ctx = ctx.clone();
        // Read on every request: handed to each worker as app data, found there
        // without a lookup in the context's service map.
        let live_guard = web::Data::from(crate::guard::state(&ctx));
        let request_rate = web::Data::from(
            ctx.get::<crate::observe::rate::RequestRate>()
                .unwrap_or_default(),
        );
        let operations = ctx.get_or_insert_with(crate::api::ApiOperations::default);
        let workers = match cfg.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let http = HttpServer::new(move || {
            // Runs once on each worker thread: its connections are driven there.
            data.db().attach_worker_pool(workers);
            let plugins = routes_plugins.clone();
            let sandbox = sandbox.clone();
            // Registered innermost first: actix runs the last `wrap` first.
            crate::api::documenting(&operations, || {
                actix_web::App::new()
                    .wrap(from_fn(crate::guard::rate_limit))
                    .wrap(from_fn(crate::guard::verify_signatures))
                    .wrap(crate::guard::cors(&cors_ctx))
                    .wrap(from_fn(crate::observe::metrics::track))
                    .wrap(from_fn(crate::http::request_context))
                    .app_data(data.clone())
                    .app_data(live_guard.clone())
                    .app_data(request_rate.clone())
                    .configure(|c| crate::http::configure_extractors(c, cfg.body_limit_bytes))
                    .configure(framework_routes)
                    .configure(|c| {
                        if sandbox.is_some() {
                            for plugin in &plugins {
                                plugin.sandbox_routes(c);
                            }
                        }
                    })
                    .configure(move |c| crate::wechat::mount_sandbox(c, sandbox.as_ref()))
                    .configure(|c| plugin_routes(c, &plugins))
                    .default_service(web::to(crate::http::not_found))
            })
        })
        .shutdown_timeout(ctx.config().server.shutdown_timeout_s)
        .shutdown_signal(stop_signal(
            (*ctx.get_or_insert_with(crate::shutdown::Stopping::default)).clone(),
        ));
        let mut http = match &ctx.config().server.tls {
            Some(tls) => {
                let tls =
                    crate::tls::server_config(tls).map_err(crate::config::ConfigError::Load)?;
                http.listen_rustls_0_23(listener, tls)?
            }
            None => http.listen(listener)?,
        };
        http = http.workers(workers);
        let server = http.run();
        let metrics_server = Self::metrics_server(&ctx)?;

        let mut tasks = Vec::new();
        if let Some(source) = ctx.get::<super::ConfigSource>() {
            let handle = tokio::spawn(super::reload::on_sighup(ctx.clone(), (*source).clone()));
            tasks.push(("config-reload".to_owned(), handle));
        }
        for plugin in &plugins {
            for task in plugin.background_tasks(&ctx) {
                tasks.push(task.spawn(ctx.clone(), ctx.shutdown().clone()));
            }
        }
        if ctx.db().has_replicas() {
            let task = crate::plugin::BackgroundTask::new("db-replicas", |ctx, stop| async move {
                ctx.db().watch_replicas(stop).await
            });
            tasks.push(task.spawn(ctx.clone(), ctx.shutdown().clone()));
        }
        // After every plugin's `on_start`: one consumer per subscription made there.
        if let Some(relay) = ctx.events().relay() {
            for group in ctx.events().groups() {
                let relay = relay.clone();
                let name = format!("events-relay {}", group.name);
                let task = crate::plugin::BackgroundTask::new(name, move |ctx, stop| {
                    relay.run_consumer(ctx, group, stop)
                });
                tasks.push(task.spawn(ctx.clone(), ctx.shutdown().clone()));
            }
        }
        let scheme = if ctx.config().server.tls.is_some() {
            "https"
        } else {
            "http"
        };
        tracing::info!(address = %addr, "listening on {scheme}://{addr}");
        Ok(Server {
            addr,
            ctx,
            server,
            metrics_server,
            tasks,
        })
    }

    /// `/metrics` alone on `observe.metrics_port`, when set (one worker).
    fn metrics_server(ctx: &AppContext) -> crate::Result<Option<actix_web::dev::Server>> {
        let observe = ctx.config().get::<crate::observe::ObserveConfig>()?;
        let Some(port) = observe.metrics_port.filter(|_| observe.metrics_enabled) else {
            return Ok(None);
        };
        let listener = TcpListener::bind((ctx.config().server.host.as_str(), port))?;
        let addr = listener.local_addr()?;
        ctx.insert(crate::observe::metrics::MetricsAddr(addr));
        let data = web::Data::new(ctx.clone());
        let server = HttpServer::new(move || {
            actix_web::App::new()
                .app_data(data.clone())
                .route("/metrics", web::get().to(crate::observe::metrics::endpoint))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)?
        .run();
        tracing::info!(address = %addr, "metrics on http://{addr}/metrics");
        Ok(Some(server))
    }

    /// The bound address (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The shared context.
    pub fn context(&self) -> &AppContext {
        &self.ctx
    }

    /// A handle to stop the server: `handle.stop(true)` stops accepting and lets
    /// in-flight requests finish within `server.shutdown_timeout_s`. SIGTERM does
    /// more: it fires [`Stopping`](crate::shutdown::Stopping) first, which closes
    /// WebSockets at once; `Stopping::begin` (from the context) does exactly that.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped (SIGTERM, SIGINT or the handle), then tells background
    /// tasks to stop and waits for them up to `server.shutdown_timeout_s`.
    pub async fn run_until_stopped(self) -> crate::Result<()> {
        let metrics = self.metrics_server.map(|server| {
            let handle = server.handle();
            (handle, tokio::spawn(server))
        });
        let served = self.server.await;
        if let Some((handle, join)) = metrics {
            handle.stop(true).await;
            let _ = join.await;
        }
        tracing::info!("server stopped; stopping background tasks");
        self.ctx.shutdown().trigger();
        let grace = Duration::from_secs(self.ctx.config().server.shutdown_timeout_s);
        let deadline = tokio::time::Instant::now() + grace;
        for (name, mut handle) in self.tasks {
            if tokio::time::timeout_at(deadline, &mut handle)
                .await
                .is_err()
            {
                tracing::warn!(task = %name, "background task did not stop in time; aborting");
                handle.abort();
            }
        }
        Ok(served?)
    }
}

/// Completes on SIGTERM, SIGINT or [`Stopping::begin`](crate::shutdown::Stopping),
/// having fired `Stopping`; the server then stops gracefully (actix's own handling
/// would stop at once on SIGINT, and fire nothing before the drain).
async fn stop_signal(stopping: crate::shutdown::Stopping) {
    use tokio::signal::unix::{SignalKind, signal};
    let terminate = async {
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => drop(terminate.recv().await),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received; stopping gracefully"),
        _ = terminate => tracing::info!("SIGTERM received; stopping gracefully"),
        _ = stopping.wait() => tracing::info!("stop requested; stopping gracefully"),
    }
    stopping.begin();
}

/// Every plugin's routes, in start order.
fn plugin_routes(cfg: &mut web::ServiceConfig, plugins: &[&'static dyn Plugin]) {
    for plugin in plugins {
        plugin.routes(cfg);
    }
}

/// The operations the framework's and `plugins`' routes document, recorded by
/// mounting them on an app that is never served: the document without a server.
pub(super) fn documented_operations(plugins: &[&'static dyn Plugin]) -> Vec<crate::api::Operation> {
    let operations = std::sync::Arc::new(crate::api::ApiOperations::default());
    crate::api::documenting(&operations, || {
        actix_web::App::new()
            .configure(framework_routes)
            .configure(|c| plugin_routes(c, plugins))
    });
    operations.list()
}

/// Mounts the framework's own documented routes: health, metrics and the document.
fn framework_routes(cfg: &mut web::ServiceConfig) {
    ApiRoutes::new(cfg)
        .get(
            "/healthz",
            "Liveness: version, build, uptime",
            Access::Public,
            crate::health::healthz,
        )
        .with(Spec::new().response::<crate::health::Health>(200, "The process answers"))
        .get(
            "/readyz",
            "Readiness: database and key-value store",
            Access::Public,
            crate::health::readyz,
        )
        .with(
            Spec::new()
                .response::<crate::health::Readiness>(200, "Ready to serve")
                .response::<crate::health::Readiness>(503, "A dependency is down: `not_ready`"),
        )
        .get(
            "/metrics",
            "Prometheus metrics (optional bearer token)",
            Access::Public,
            crate::observe::metrics::endpoint,
        )
        .with(
            Spec::new()
                .empty(200, "Prometheus text exposition format")
                .errors(&[(401, "invalid_token"), (404, "not_found")]),
        )
        .get(
            "/api/openapi.json",
            "This document",
            Access::Public,
            crate::api::openapi,
        )
        .with(Spec::new().empty(200, "This OpenAPI 3 document"))
        .get(
            "/debug/pprof/profile",
            "CPU profile: flamegraph SVG or pprof protobuf (when enabled)",
            Access::Admin,
            crate::profiling::profile,
        )
        .with(
            Spec::new()
                .empty(200, "A flamegraph (SVG) or a pprof protobuf")
                .errors(&[(404, "not_found"), (409, "profile_in_progress")]),
        );
}
