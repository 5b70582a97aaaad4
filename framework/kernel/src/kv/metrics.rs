//! `kv_errors_total{backend}`: failed key-value store operations, process-wide (a
//! store has no app context), registered in Prometheus' default registry, which
//! `GET /metrics` renders with the app's own families.

use std::sync::OnceLock;

use prometheus::{IntCounterVec, Opts};

/// The family, registered on first use.
pub fn kv_errors() -> &'static IntCounterVec {
    static ERRORS: OnceLock<IntCounterVec> = OnceLock::new();
    ERRORS.get_or_init(|| {
        let errors = IntCounterVec::new(
            Opts::new("kv_errors_total", "Failed key-value store operations."),
            &["backend"],
        )
        .expect("valid metric");
        // Registration fails only for a duplicate name, which cannot happen here.
        let _ = prometheus::default_registry().register(Box::new(errors.clone()));
        errors
    })
}
