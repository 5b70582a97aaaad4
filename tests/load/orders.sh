#!/usr/bin/env bash
# Load test of POST /api/orders (fresh Idempotency-Key per request, one product with
# a huge stock) on PostgreSQL + Redis with wrk at 64 connections, then pgbench running
# the same SQL (tests/load/orders.sql) on the same database with as many clients as
# the app's pool (DB_POOL, default 16), and the ratio of the two.
# Needs the services of .ci/run and wrk (apt-get install -y wrk).
# Usage: tests/load/orders.sh [duration, default 20s]
source "$(dirname "$0")/lib.sh"
duration=${1:-20s}
pool=${DB_POOL:-16}

psql -h 127.0.0.1 -U postgres -d "$db" -qc "UPDATE stock SET qty = 1000000000 WHERE product_id = 1"
token=$(login o_load_orders)

echo "== POST /api/orders (app, wrk -c64) =="
TOKEN=$token wrk -t2 -c64 -d"$duration" -s tests/load/orders.lua --latency "$base" | tee "$work/wrk.txt"
app_rps=$(awk '/^Requests\/sec/ {print $2}' "$work/wrk.txt")

# Stop the app (and its outbox worker) so pgbench has the database to itself.
kill "$app" && wait "$app" 2>/dev/null || true
app=
echo "== the same SQL (pgbench -c$pool) =="
secs=${duration%s}
pgbench -h 127.0.0.1 -U postgres -n -M prepared -c "$pool" -j 2 -T "$secs" -f tests/load/orders.sql "$db" | tee "$work/pgbench.txt"
pg_tps=$(awk '/^tps/ {print $3; exit}' "$work/pgbench.txt")

python3 -c "print(f'app {float(\"$app_rps\"):.0f} req/s vs pgbench {float(\"$pg_tps\"):.0f} tps: {100*float(\"$app_rps\")/float(\"$pg_tps\"):.0f}%')"
