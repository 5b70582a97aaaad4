//! The state every handler, plugin and task shares.
//!
//! The context holds what the kernel itself provides (configuration, database,
//! key-value store, field crypto, events, shutdown); every feature and plugin keeps
//! its services in it by type ([`AppContext::insert`], [`AppContext::get`]), so the
//! kernel names none of them.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::{Ready, ready};
use std::sync::{Arc, RwLock};

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use chrono::{DateTime, Utc};

use weapp_crypto::FieldCrypto;

use crate::config::Config;
use crate::db::{Db, ReadFrom};
use crate::events::EventBus;
use crate::kv::KvStore;
use crate::shutdown::Shutdown;

/// Build facts reported by `/healthz`: the app's, and the framework's it was built on.
#[derive(Debug, Clone)]
pub struct BuildInfo {
    /// The app's version (its `CARGO_PKG_VERSION` when the app sets one, else the
    /// framework's).
    pub version: String,
    /// Short git commit the app was built from, as the app says (`App::commit`), or
    /// `unknown`.
    pub git_hash: String,
    /// The framework's version.
    pub framework_version: String,
    /// Short git commit the framework was built from, or `unknown`.
    pub framework_git_hash: String,
}

struct Inner {
    config: Config,
    db: Db,
    kv: Arc<dyn KvStore>,
    crypto: Option<Arc<FieldCrypto>>,
    build: BuildInfo,
    started_at: DateTime<Utc>,
    shutdown: Shutdown,
    events: EventBus,
    extensions: RwLock<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

/// Configuration, database, key-value store and plugin services, shared by reference
/// count: clone it freely. Handlers take it as an argument (`ctx: AppContext`).
#[derive(Clone)]
pub struct AppContext {
    inner: Arc<Inner>,
}

impl AppContext {
    /// Assembles a context; the app builder does this once at start-up.
    pub fn new(
        config: Config,
        db: Db,
        kv: Arc<dyn KvStore>,
        crypto: Option<Arc<FieldCrypto>>,
        build: BuildInfo,
    ) -> Self {
        AppContext {
            inner: Arc::new(Inner {
                config,
                db,
                kv,
                crypto,
                build,
                started_at: Utc::now(),
                shutdown: Shutdown::new(),
                events: EventBus::default(),
                extensions: RwLock::new(HashMap::new()),
            }),
        }
    }

    /// The loaded configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The database pool.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// Where a read-only query on behalf of `user_id` runs: the primary while the
    /// user's last write is within [`Db::read_your_writes_window`] (they must see
    /// it), else a replica ([`crate::db#read-replicas`]). Without replicas, no
    /// lookup: always the primary.
    pub async fn read_from(&self, user_id: i64) -> ReadFrom {
        if !self.inner.db.has_replicas() {
            return ReadFrom::Primary;
        }
        match self.kv().get(&wrote_key(user_id)).await {
            Ok(None) => ReadFrom::Replica,
            // A write to see, or the store cannot tell: the primary is always right.
            Ok(Some(_)) | Err(_) => ReadFrom::Primary,
        }
    }

    /// Remembers that `user_id` has just written, so that [`AppContext::read_from`]
    /// sends their reads to the primary for [`Db::read_your_writes_window`]. The
    /// HTTP layer calls it after every signed-in request that may write (any method
    /// but GET, HEAD, OPTIONS); without replicas it does nothing.
    pub async fn note_write(&self, user_id: i64) {
        if !self.inner.db.has_replicas() {
            return;
        }
        let window = self.inner.db.read_your_writes_window();
        if let Err(e) = self.kv().set(&wrote_key(user_id), b"1", Some(window)).await {
            tracing::warn!(error = %e, user_id, "could not remember a write for read-your-writes");
        }
    }

    /// The key-value store (Redis or in-memory).
    pub fn kv(&self) -> &dyn KvStore {
        self.inner.kv.as_ref()
    }

    /// The key-value store as a shared handle, for services that keep it.
    pub fn kv_handle(&self) -> Arc<dyn KvStore> {
        self.inner.kv.clone()
    }

    /// Field encryption and blind indexes; an error (503) if `crypto.keys` is not
    /// configured.
    pub fn crypto(&self) -> Result<&FieldCrypto, weapp_crypto::FieldError> {
        self.inner
            .crypto
            .as_deref()
            .ok_or(weapp_crypto::FieldError::NotConfigured)
    }

    /// Field encryption as a shared handle, for services that keep it (keeping the
    /// context itself inside a service it holds would make a reference cycle);
    /// `None` without `crypto.keys`.
    pub fn crypto_handle(&self) -> Option<Arc<FieldCrypto>> {
        self.inner.crypto.clone()
    }

    /// Version and commit of the running build.
    pub fn build_info(&self) -> &BuildInfo {
        &self.inner.build
    }

    /// When this process started serving.
    pub fn started_at(&self) -> DateTime<Utc> {
        self.inner.started_at
    }

    /// The signal background tasks watch to stop.
    pub fn shutdown(&self) -> &Shutdown {
        &self.inner.shutdown
    }

    /// In-process events between plugins; see [`crate::events`].
    pub fn events(&self) -> &EventBus {
        &self.inner.events
    }

    /// Stores a service (one per type), typically from a plugin's `on_start`.
    pub fn insert<T: Send + Sync + 'static>(&self, value: T) {
        self.inner
            .extensions
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(TypeId::of::<T>(), Arc::new(value));
    }

    /// A service stored with [`AppContext::insert`].
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        self.inner
            .extensions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&TypeId::of::<T>())
            .cloned()
            .and_then(|any| any.downcast::<T>().ok())
    }

    /// The service of type `T`, stored first from `make` if there is none yet (one
    /// winner when several callers race), for services a feature can start by
    /// itself in a context built without the app builder (a test's, a command's).
    /// `make` runs under the services' lock, so it must not read or store services.
    pub fn get_or_insert_with<T: Send + Sync + 'static>(&self, make: impl FnOnce() -> T) -> Arc<T> {
        if let Some(found) = self.get::<T>() {
            return found;
        }
        let mut extensions = self
            .inner
            .extensions
            .write()
            .unwrap_or_else(|p| p.into_inner());
        extensions
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Arc::new(make()))
            .clone()
            .downcast::<T>()
            .expect("stored under its own type id")
    }
}

impl FromRequest for AppContext {
    type Error = crate::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.app_data::<web::Data<AppContext>>()
                .map(|data| data.get_ref().clone())
                .ok_or_else(|| crate::Error::internal("AppContext is not registered on this app")),
        )
    }
}

/// The key that says `user_id` wrote within the read-your-writes window.
fn wrote_key(user_id: i64) -> String {
    format!("db:wrote:{user_id}")
}
