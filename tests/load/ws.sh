#!/usr/bin/env bash
# Load test of the real-time relay (/ws): the example app built in release on
# PostgreSQL + Redis; CONNECTIONS sockets (default 5000), one user each, all in one
# room; one more socket publishes MESSAGES messages (default 200), one every
# INTERVAL_MS ms (default 50), each delivered to every socket. Prints sockets opened
# per second, the app's memory per socket, deliveries per second and the delivery
# latency (p50/p99/max, publish to receipt), then the app's peak RSS and the relay's
# metrics. Needs the services tests/setup.sh starts.
# Usage: [CONNECTIONS=5000] [MESSAGES=200] [INTERVAL_MS=50] tests/load/ws.sh
# 5,000 client sockets here and 5,000 in the app: more than the default 1,024 files.
ulimit -n "$(ulimit -Hn)"
# The publisher sends up to 1,000 messages/s; the default 10/s is for people.
export WEAPP__REALTIME__MESSAGES_PER_SECOND=1000
source "$(dirname "$0")/lib.sh"

cargo build --release -p weapp-e2e --bin ws-load
target/release/ws-load "$base" "${CONNECTIONS:-5000}" "${MESSAGES:-200}" "${INTERVAL_MS:-50}" "$app"
echo "app peak RSS: $(peak_rss)"
curl -fs "$base/metrics" | grep -E '^realtime_(connections|messages|dropped|closed)' || true
