//! Route registration that documents itself: [`ApiRoutes`] mounts a handler and
//! records its method, path, summary and access in one call, and [`ApiRoutes::with`]
//! adds what it takes and answers ([`Spec`]: bodies, parameters, responses, error
//! codes, from the Rust types through utoipa), so `GET /api/openapi.json` (OpenAPI 3)
//! is built from the routes the server really has and cannot drift from them. Each
//! app keeps its own [`ApiOperations`] in its context, so two apps in one process
//! document exactly their own routes.
//!
//! ```no_run
//! use weapp::actix_web::{HttpResponse, web};
//! use weapp::api::{Access, ApiRoutes, Spec};
//!
//! async fn hello() -> HttpResponse {
//!     HttpResponse::Ok().finish()
//! }
//!
//! fn routes(cfg: &mut web::ServiceConfig) {
//!     ApiRoutes::new(cfg)
//!         .get("/api/hello", "Says hello", Access::Public, hello)
//!         .with(Spec::new().empty(200, "Hello"));
//! }
//! ```

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::AppContext;
use actix_web::{FromRequest, Handler, HttpResponse, Responder, web};

mod document;
mod spec;

pub use document::document;
pub use spec::Spec;

/// Who may call a route; becomes its OpenAPI `security`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone.
    Public,
    /// A logged-in user: `Authorization: Bearer <access token>`.
    User,
    /// An operator: `X-Admin-Token`.
    Admin,
    /// A server calling back with its own signature (payment provider, WeChat push).
    Signed,
}

/// One documented operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// `get`, `post`, `delete`...
    pub method: &'static str,
    /// actix pattern, e.g. `/api/orders/{id}`.
    pub path: &'static str,
    /// One line for the document.
    pub summary: &'static str,
    /// Who may call it.
    pub access: Access,
    /// What it takes and answers.
    pub spec: Spec,
}

/// The operations one app documents, by path then method; in the app's context.
#[derive(Debug, Default)]
pub struct ApiOperations {
    by_route: Mutex<BTreeMap<(&'static str, &'static str), Operation>>,
}

impl ApiOperations {
    /// Every operation recorded so far, by path then method.
    pub fn list(&self) -> Vec<Operation> {
        self.lock().values().cloned().collect()
    }

    fn record(&self, operation: Operation) {
        self.lock()
            .insert((operation.path, operation.method), operation);
    }

    fn describe(&self, path: &'static str, method: &'static str, spec: Spec) {
        if let Some(operation) = self.lock().get_mut(&(path, method)) {
            operation.spec = spec;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(&'static str, &'static str), Operation>> {
        // Each change is one insert: a panic elsewhere cannot leave it half done.
        self.by_route.lock().unwrap_or_else(|p| p.into_inner())
    }
}

thread_local! {
    /// Where [`ApiRoutes`] records, while [`documenting`] runs on this thread.
    /// A plugin's `routes(cfg)` receives only actix's `ServiceConfig`, which carries
    /// nothing of the app back out; the server points this at its own
    /// [`ApiOperations`] for exactly the synchronous call that mounts the routes.
    static RECORDING: RefCell<Option<Arc<ApiOperations>>> = const { RefCell::new(None) };
}

/// Runs `mount` (which mounts routes with [`ApiRoutes`]) so that every route it
/// documents is recorded in `operations`; restores whatever was recorded into before.
pub fn documenting<R>(operations: &Arc<ApiOperations>, mount: impl FnOnce() -> R) -> R {
    struct Restore(Option<Arc<ApiOperations>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            RECORDING.with(|r| *r.borrow_mut() = self.0.take());
        }
    }
    let _restore = Restore(RECORDING.with(|r| r.replace(Some(operations.clone()))));
    mount()
}

/// One registering method per HTTP method, all alike.
macro_rules! methods {
    ($($(#[$doc:meta])* $name:ident => $route:expr,)*) => {
        $(
            $(#[$doc])*
            pub fn $name<F, Args>(
                &mut self,
                path: &'static str,
                summary: &'static str,
                access: Access,
                handler: F,
            ) -> &mut Self
            where
                F: Handler<Args>,
                Args: FromRequest + 'static,
                F::Output: Responder + 'static,
            {
                self.add(stringify!($name), $route, path, summary, access, handler)
            }
        )*
    };
}

/// Mounts documented routes on a [`web::ServiceConfig`].
pub struct ApiRoutes<'a> {
    cfg: &'a mut web::ServiceConfig,
    last: Option<(&'static str, &'static str)>,
}

impl<'a> ApiRoutes<'a> {
    /// Wraps the config a plugin's `routes` receives.
    pub fn new(cfg: &'a mut web::ServiceConfig) -> Self {
        ApiRoutes { cfg, last: None }
    }

    /// Describes the route mounted last: its body, parameters, responses and error
    /// codes.
    pub fn with(&mut self, spec: Spec) -> &mut Self {
        if let Some((path, method)) = self.last {
            RECORDING.with(|r| {
                if let Some(operations) = r.borrow().as_ref() {
                    operations.describe(path, method, spec);
                }
            });
        }
        self
    }

    fn add<F, Args>(
        &mut self,
        method: &'static str,
        route: actix_web::Route,
        path: &'static str,
        summary: &'static str,
        access: Access,
        handler: F,
    ) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        RECORDING.with(|r| {
            if let Some(operations) = r.borrow().as_ref() {
                operations.record(Operation {
                    method,
                    path,
                    summary,
                    access,
                    spec: Spec::default(),
                });
            }
        });
        self.cfg.route(path, route.to(handler));
        self.last = Some((path, method));
        self
    }

    methods! {
        /// `GET path`.
        get => web::get(),
        /// `POST path`.
        post => web::post(),
        /// `PUT path`.
        put => web::put(),
        /// `PATCH path`.
        patch => web::patch(),
        /// `DELETE path`.
        delete => web::delete(),
    }
}

/// The document's `info.title`.
pub const TITLE: &str = "weapp API";

/// `GET /api/openapi.json`; the app mounts it with the framework's other routes.
pub async fn openapi(ctx: AppContext) -> HttpResponse {
    let operations = ctx
        .get::<ApiOperations>()
        .map(|o| o.list())
        .unwrap_or_default();
    HttpResponse::Ok().json(document(&operations, TITLE, &ctx.build_info().version))
}
