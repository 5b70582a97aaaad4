#!/usr/bin/env bash
# Load test of POST /api/orders (fresh Idempotency-Key per request, one product with
# a huge stock) on PostgreSQL + Redis with wrk at 64 connections, then pgbench running
# the same SQL on the same database with as many clients as the app's pool (DB_POOL,
# default 16): one statement at a time (tests/load/orders.sql) and in the app's two
# pipelines (orders-pipelined.sql); the app's ratio to each, the CPU time one order
# takes in the app's run and in pgbench's, and how many orders the app's transactions
# carried on average (group commit batches orders that arrive together), and pgbench
# running the app's batch transaction at that size (orders-batched.sql); and the
# order events' trip through the Redis stream relay (events/s, lag, drain time).
# Needs the services tests/setup.sh starts and wrk (apt-get install -y wrk).
# Usage: [PGBENCH=0] tests/load/orders.sh [duration, default 20s]
source "$(dirname "$0")/lib.sh"
duration=${1:-20s}
pool=${DB_POOL:-16}

psql -h 127.0.0.1 -U postgres -d "$db" -qc "UPDATE stock SET qty = 1000000000 WHERE product_id = 1"
token=$(login o_load_orders)

# CPU time in clock ticks: the whole machine (all but idle and iowait), or one process.
busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
# per_order <ticks> <orders>: milliseconds of CPU per order.
per_order() { python3 -c "print(f'{1000 * $1 / $hz / $2:.2f}')"; }

echo "== POST /api/orders (app, wrk -c64) =="
machine0=$(busy_ticks) app0=$(proc_ticks "$app")
# Events not handled yet (order_events_behind), sampled every second during the load.
( while sleep 1; do
    curl -fs "$base/metrics" | awk '/^order_events_behind / {print $2}'
  done > "$work/behind.txt" ) &
sampler=$!
TOKEN=$token wrk -t2 -c64 -d"$duration" -s tests/load/orders.lua --latency "$base" | tee "$work/wrk.txt"
kill "$sampler" 2>/dev/null || true
machine1=$(busy_ticks) app1=$(proc_ticks "$app")
accepted=$(psql -h 127.0.0.1 -U postgres -d "$db" -tAc "SELECT COUNT(*) FROM orders")
outbox_end=$(psql -h 127.0.0.1 -U postgres -d "$db" -tAc "SELECT COUNT(*) FROM order_outbox WHERE state <> 'done'")
echo "outbox events not delivered when the load stopped: $outbox_end"
echo "orders accepted: $accepted ($(python3 -c "print(round($accepted / ${duration%s}))")/s);" \
    "events behind during the load: max $(sort -n "$work/behind.txt" | tail -1)," \
    "at the end $(tail -1 "$work/behind.txt") (order.outbox.max_behind refuses orders past it with 429)"
app_rps=$(awk '/^Requests\/sec/ {print $2}' "$work/wrk.txt")
app_orders=$(awk '/requests in/ {print $1}' "$work/wrk.txt")

# Rows written by one transaction share its xmin: how many orders each commit carried
# (order.group_commit), before pgbench adds rows of its own.
per_commit=$(psql -h 127.0.0.1 -U postgres -d "$db" -tAc \
    "SELECT round(COUNT(*)::numeric / NULLIF(COUNT(DISTINCT xmin::text), 0), 1) FROM orders")
echo "orders per transaction (group commit): $per_commit"

# The order events crossed the Redis stream (events.relay = auto with redis.url):
# how far its consumer groups were behind when the load stopped, how long they took
# to catch up, and the events per second they handled meanwhile.
stream="weapp_load_$$:events"
# behind: events appended and not yet read, plus read and not acknowledged, over
# every group.
behind() {
    redis-cli -h 127.0.0.1 --raw XINFO GROUPS "$stream" | python3 -c "
import sys
lines = sys.stdin.read().split()
total = 0
for i, w in enumerate(lines[:-1]):
    if w in ('pending', 'lag') and lines[i + 1].isdigit():
        total += int(lines[i + 1])
print(total)"
}
behind_end=$(behind)
drain_start=$(date +%s.%N)
for _ in $(seq 1 1200); do
    outbox_left=$(psql -h 127.0.0.1 -U postgres -d "$db" -tAc \
        "SELECT COUNT(*) FROM order_outbox WHERE state <> 'done'")
    [ "$outbox_left" = 0 ] && [ "$(behind)" = 0 ] && break
    sleep 0.1
done
drain_s=$(python3 -c "import time; print(f'{time.time() - $drain_start:.1f}')")
# The work a run leaves for after the load (events not delivered yet) is work all
# the same: CPU per order counted until the drain ends too.
machine_drained=$(busy_ticks) app_drained=$(proc_ticks "$app")
# Entries ever appended (XLEN stops at events.max_len: the stream is trimmed).
appended=$(redis-cli -h 127.0.0.1 --raw XINFO STREAM "$stream" | awk 'prev == "entries-added" {print; exit} {prev = $0}')
echo "event relay: $appended events through the stream; $behind_end behind when the load" \
    "stopped; outbox and groups drained ${drain_s}s later;" \
    "$(python3 -c "print(round($appended / (${duration%s} + $drain_s)))") events/s end to end"

echo "app peak RSS: $(peak_rss)"

# PGBENCH=0: the app's figures only (e.g. a long run watching the event backlog).
if [ "${PGBENCH:-1}" = 0 ]; then
    exit 0
fi

# Stop the app (and its outbox worker) so pgbench has the database to itself.
kill "$app" && wait "$app" 2>/dev/null || true
app=
secs=${duration%s}
# The app talks to PostgreSQL without TLS; so does pgbench here (libpq would
# otherwise negotiate TLS on 127.0.0.1 and spend the server's CPU on it).
export PGSSLMODE=disable
echo "== the same SQL, one statement at a time (pgbench -c$pool) =="
machine2=$(busy_ticks)
pgbench -h 127.0.0.1 -U postgres -n -M prepared -c "$pool" -j 2 -T "$secs" -f tests/load/orders.sql "$db" | tee "$work/pgbench.txt"
machine3=$(busy_ticks)
pg_tps=$(awk '/^tps/ {print $3; exit}' "$work/pgbench.txt")
pg_orders=$(awk '/number of transactions actually processed/ {split($NF, n, "/"); print n[1]}' "$work/pgbench.txt")
echo "== the same SQL in the app's two pipelines (pgbench -c$pool) =="
pgbench -h 127.0.0.1 -U postgres -n -M prepared -c "$pool" -j 2 -T "$secs" -f tests/load/orders-pipelined.sql "$db" | tee "$work/pgbench-pipelined.txt"
pp_tps=$(awk '/^tps/ {print $3; exit}' "$work/pgbench-pipelined.txt")
# The app's own batch transaction at the batch size it averaged (at least 1).
batch=$(python3 -c "print(max(1, round(float('${per_commit:-1}' or 1))))")
echo "== the app's group-commit transaction, $batch orders each (pgbench -c$pool) =="
pgbench -h 127.0.0.1 -U postgres -n -M prepared -c "$pool" -j 2 -T "$secs" -D batch="$batch" \
    -f tests/load/orders-batched.sql "$db" | tee "$work/pgbench-batched.txt"
pb_tps=$(awk '/^tps/ {print $3; exit}' "$work/pgbench-batched.txt")

python3 -c "
app, pg, pp = float('$app_rps'), float('$pg_tps'), float('$pp_tps')
pb = float('$pb_tps') * $batch
print(f'app {app:.0f} req/s vs pgbench {pg:.0f} tps ({100*app/pg:.0f}%), pipelined pgbench {pp:.0f} tps ({100*app/pp:.0f}%)')
print(f'app vs pgbench running its batches of $batch: {pb:.0f} orders/s ({100*app/pb:.0f}%)')"
# The box's speed drifts from run to run; CPU per order says where the time went.
echo "CPU per order: app run $(per_order $((machine1 - machine0)) "$app_orders") ms" \
    "(the app itself $(per_order $((app1 - app0)) "$app_orders") ms)," \
    "pgbench run $(per_order $((machine3 - machine2)) "$pg_orders") ms (whole machine)"
echo "CPU per order until the events drained: app run $(per_order $((machine_drained - machine0)) "$app_orders") ms" \
    "(the app itself $(per_order $((app_drained - app0)) "$app_orders") ms)"
