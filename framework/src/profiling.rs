//! CPU profiling on demand: `GET /debug/pprof/profile?seconds=N&format=svg|pb`
//! samples every thread for N seconds (99 Hz) and answers a flamegraph SVG or a
//! pprof protobuf that `go tool pprof` reads. Built in only with weapp's `profiling`
//! feature, served only when `observe.profiling_enabled`, and only to an admin
//! (`X-Admin-Token`).
//!
//! Under load: start the load, then
//! `curl -H "X-Admin-Token: $TOKEN" 'http://host/debug/pprof/profile?seconds=20' > cpu.svg`
//! (or `format=pb` → `go tool pprof -http=: cpu.pb`).

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use crate::auth::AdminCaller;
use crate::{AppContext, Error};

/// Longest profile one request may take.
pub const MAX_SECONDS: u64 = 60;

/// `?seconds=&format=`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
// Without the profiler the query is still checked, though nothing reads `format`.
#[cfg_attr(not(feature = "profiling"), allow(dead_code))]
pub(crate) struct ProfileQuery {
    #[serde(default = "default_seconds")]
    seconds: u64,
    #[serde(default)]
    format: Format,
}

fn default_seconds() -> u64 {
    10
}

#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Format {
    #[default]
    Svg,
    Pb,
}

/// `GET /debug/pprof/profile`.
#[cfg_attr(not(feature = "profiling"), allow(unused_variables))]
pub(crate) async fn profile(
    ctx: AppContext,
    admin: AdminCaller,
    query: web::Query<ProfileQuery>,
) -> Result<HttpResponse, Error> {
    if !ctx
        .config()
        .get::<crate::observe::ObserveConfig>()?
        .profiling_enabled
    {
        return Err(Error::not_found(
            "profiling is disabled (observe.profiling_enabled)",
        ));
    }
    if query.seconds == 0 || query.seconds > MAX_SECONDS {
        return Err(Error::bad_request(
            "invalid_query",
            format!("seconds must be 1 to {MAX_SECONDS}"),
        ));
    }
    #[cfg(not(feature = "profiling"))]
    {
        // Start-up refuses profiling_enabled without the profiler; this answers
        // whatever skipped that check.
        Err(Error::not_found(
            "profiling is not built into this binary (weapp's `profiling` feature)",
        ))
    }
    #[cfg(feature = "profiling")]
    sample(admin, query.into_inner()).await
}

#[cfg(feature = "profiling")]
async fn sample(admin: AdminCaller, query: ProfileQuery) -> Result<HttpResponse, Error> {
    // Only one profiler can run in a process.
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(99)
        .blocklist(&["libc", "libgcc", "pthread", "vdso"])
        .build()
        .map_err(|e| {
            Error::conflict(
                "profile_in_progress",
                format!("cannot start the profiler: {e}"),
            )
        })?;
    tracing::info!(admin = %admin.name, seconds = query.seconds, "CPU profile started");
    tokio::time::sleep(std::time::Duration::from_secs(query.seconds)).await;
    let report = guard
        .report()
        .build()
        .map_err(|e| Error::internal(format!("profile report: {e}")))?;
    match query.format {
        Format::Svg => {
            let mut svg = Vec::new();
            report
                .flamegraph(&mut svg)
                .map_err(|e| Error::internal(format!("flamegraph: {e}")))?;
            Ok(HttpResponse::Ok().content_type("image/svg+xml").body(svg))
        }
        Format::Pb => {
            use pprof::protos::Message;
            let profile = report
                .pprof()
                .map_err(|e| Error::internal(format!("pprof: {e}")))?;
            let mut body = Vec::new();
            profile
                .encode(&mut body)
                .map_err(|e| Error::internal(format!("pprof encoding: {e}")))?;
            Ok(HttpResponse::Ok()
                .content_type("application/octet-stream")
                .body(body))
        }
    }
}
