#!/usr/bin/env bash
# Overhead of the metrics and tracing middleware on a trivial route: the example app
# (release, embedded default) serving GET /healthz to wrk (2 threads, 64 connections),
# alternately with metrics off and log level warn (no span is recorded) and with
# metrics on and log level info (a span and a "request finished" line per request,
# written to /dev/null), and metrics on at warn to tell the two costs apart.
# Prints requests/s of each run and a /metrics sample.
# Usage: tests/load/overhead.sh [duration, default 10s] [rounds, default 2]
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${1:-10s}
rounds=${2:-2}
port=18081
cargo build --release -p example-app
work=$(mktemp -d)
trap 'kill "${app:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

run() { # run <label> <metrics_enabled> <log_level>
    (
        cd "$work"
        WEAPP__SERVER__PORT=$port WEAPP__OBSERVE__METRICS_ENABLED=$2 WEAPP__OBSERVE__LOG_LEVEL=$3 \
            exec "$OLDPWD/target/release/example-app" >/dev/null 2>&1
    ) &
    app=$!
    for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
    printf '%-32s ' "$1"
    wrk -t2 -c64 -d"$duration" "http://127.0.0.1:$port/healthz" | awk '/^Requests\/sec/ {print $2 " req/s"}'
    if [ "$2" = true ]; then curl -fs "http://127.0.0.1:$port/metrics" > "$work/metrics.txt"; fi
    kill "$app"; wait "$app" 2>/dev/null || true
}

for _ in $(seq 1 "$rounds"); do
    run "without (metrics off, warn)" false warn
    run "metrics only (on, warn)" true warn
    run "with (metrics on, info spans)" true info
done
echo "--- /metrics sample ---"
grep -E '^(http_requests_total|http_request_duration_seconds_count|http_requests_in_flight|db_pool_connections|wechat_access)' "$work/metrics.txt"
