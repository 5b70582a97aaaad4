#!/usr/bin/env bash
# Load test of a flash sale (秒杀) on PostgreSQL + Redis: BUYERS sandbox buyers
# (default 10,000) hammer POST /api/orders for product 1 on flash sale with wrk at
# CONNS connections (default 64), each request a buyer in turn and a fresh key.
#
# 1. The sale: STOCK units (default 2,000), one per buyer, 10 s. Reports how fast
#    the stock was reserved and written, p99, and the ledger after the drain:
#    units oversold (must be 0), reservations answered 202 whose order is missing
#    (lost, must be 0), units left in the database and in Redis.
# 2. A burst: BURST units (default 50,000), five per buyer, every one reserved
#    before the writers catch up (the queue bound is raised above it): the rate
#    buyers get their answers at, with the writers working meanwhile on the same
#    cores; then ROUNDS times (default 3) with the writers paced at PACE orders/s
#    (default 2,000; order.flash_sale.max_writes_per_s), the queue written after
#    the rush, each round followed by PG_SLICE seconds (default 5) of pgbench (4.)
#    for that round's ratio: this machine's speed drifts by half within minutes,
#    so a rate is only compared with pgbench's of the same moment, and the
#    median round is the figure.
# 3. Sustained: a stock that does not run out, no per-buyer limit, DURATION
#    (default 20s): reservations settle at the writers' pace, the rest get 429
#    flash_sale_busy (the queue bound, order.flash_sale.max_queued, at 20,000).
# 4. pgbench running the one-order transaction on the same hot row
#    (tests/load/orders.sql, DB_POOL clients, default 16), for the ratios. It runs
#    on a database of its own with the app's schema and catalogue (on the same
#    server): the app's jobs would otherwise see its orders (expire them, relay
#    their events) in the rounds after it.
# The instances are set up as for a sale: WeChat is a host of its own (the sandbox
# as its own process, SANDBOX_HOST=1, so the app routes only its own paths), and
# each instance trusts a session it checked for SESSION_CACHE_MS (default 2000;
# auth.session_cache_ms, 0: Redis is asked on every request).
# Needs the services tests/setup.sh starts and wrk (apt-get install -y wrk).
# Usage: [BUYERS=10000] [STOCK=2000] [BURST=50000] [PACE=2000] [ROUNDS=3] \
#        [PG_SLICE=5] [CONNS=64] [SESSION_CACHE_MS=2000] tests/load/flash-sale.sh [duration]
burst=${BURST:-50000}
export WEAPP__AUTH__SESSION_CACHE_MS=${SESSION_CACHE_MS:-2000}
# The burst must fit in the queue: run 3 resets the bound to its default.
SANDBOX_HOST=1 APP_ENV="WEAPP__ORDER__FLASH_SALE__MAX_QUEUED=$((burst + 1))" \
    source "$(dirname "$0")/lib.sh"
duration=${1:-20s}
buyers=${BUYERS:-10000}
stock=${STOCK:-2000}
conns=${CONNS:-64}
pool=${DB_POOL:-16}
pace=${PACE:-2000}
rounds=${ROUNDS:-3}
pg_slice=${PG_SLICE:-5}

# restart <settings>: a fresh instance with these APP_ENV settings in place of the
# running one (the same database, Redis and development keys).
restart() {
    echo "app peak RSS: $(peak_rss)"
    kill "$app" && wait "$app" 2>/dev/null || true
    port=$((port + 1))
    APP_ENV="$1" start_app "$port"
    app=${apps[-1]}
    base="http://127.0.0.1:$port"
}
sql() { psql -h 127.0.0.1 -U postgres -d "$db" -tAc "$1"; }

# pgbench's database: the app's schema and catalogue, a stock that does not run out.
export PGSSLMODE=disable
pg_db="${db}_pgbench"
psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $pg_db"
trap 'cleanup; psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" || true' EXIT
pg_dump -h 127.0.0.1 -U postgres --schema-only "$db" | psql -h 127.0.0.1 -U postgres -q -d "$pg_db" >/dev/null
pg_dump -h 127.0.0.1 -U postgres --data-only -t products -t stock "$db" |
    psql -h 127.0.0.1 -U postgres -q -d "$pg_db" >/dev/null
psql -h 127.0.0.1 -U postgres -d "$pg_db" -qc "UPDATE stock SET qty = 1000000000"
# pgbench_tps <seconds> <out>: pgbench's hot-row transactions per second.
pgbench_tps() {
    pgbench -h 127.0.0.1 -U postgres -n -M prepared -c "$pool" -j 2 -T "$1" \
        -f tests/load/orders.sql "$pg_db" > "$2"
    awk '/^tps/ {print $3; exit}' "$2"
}
sale() {
    curl -fs -X "$1" "$base/api/admin/products/1/flash-sale" -H "X-Admin-Token: $admin_token" \
        -H 'Content-Type: application/json' ${2:+-d "$2"}
}
drain() {
    for _ in $(seq 1 1200); do
        [ "$(sale GET | json "['queued']")" = 0 ] && return
        sleep 0.1
    done
    echo "the queue did not drain in 120 s" >&2
    exit 1
}

echo "== logging in $buyers buyers (auth.session_cache_ms = $WEAPP__AUTH__SESSION_CACHE_MS) =="
python3 tests/load/buyers.py "$base" "$buyers" o_flash_load_ "$sandbox" > "$work/tokens"

# run <name> <stock> <per-user limit> <duration>: one sale under wrk; leaves
# $work/<name>.* and prints the figures.
run() {
    local name=$1 units=$2 limit=$3 secs=${4%s}
    sql "UPDATE stock SET qty = $units WHERE product_id = 1" >/dev/null
    sale PUT "{\"per_user_limit\": $limit}" >/dev/null
    # The run's orders are those reserved from now: ids come in blocks, and an
    # instance may still hold ids below the last run's highest.
    local since
    since=$(date +%s%3N)
    TOKENS="$work/tokens" ACCEPTED="$work/$name.accepted" \
        wrk -t2 -c"$conns" -d"${secs}s" -s tests/load/flash-sale.lua --latency "$base" |
        tee "$work/$name.wrk"
    local stopped
    stopped=$(date +%s%3N)
    drain
    local drained
    drained=$(date +%s%3N)
    sql "SELECT o.id FROM orders o WHERE o.created_at >= $since ORDER BY 1" | sort > "$work/$name.written"
    sort "$work/$name.accepted" > "$work/$name.accepted.sorted"
    local accepted lost unread
    accepted=$(wc -l < "$work/$name.accepted")
    lost=$(comm -23 "$work/$name.accepted.sorted" "$work/$name.written" | wc -l)
    # Orders of requests still in flight when wrk stopped: served, their answers
    # never read (at most one per connection).
    unread=$(comm -13 "$work/$name.accepted.sorted" "$work/$name.written" | wc -l)
    # Reservation and write windows: created_at is when Redis reserved the order,
    # updated_at when its batch was written.
    IFS='|' read -r reserved_ms written_ms rows cancelled sold < <(sql "
        SELECT GREATEST(MAX(o.created_at) - MIN(o.created_at), 1),
               GREATEST(MAX(o.updated_at) - MIN(o.created_at), 1),
               COUNT(*), COUNT(*) FILTER (WHERE o.status = 'cancelled'),
               COALESCE(SUM(i.qty) FILTER (WHERE o.status <> 'cancelled'), 0)
        FROM orders o JOIN order_items i ON i.order_id = o.id WHERE o.created_at >= $since")
    local left available
    left=$(sql "SELECT qty FROM stock WHERE product_id = 1")
    available=$(sale GET | json "['available']")
    sale DELETE >/dev/null
    echo "-- $name: $accepted reservations answered 202, $rows orders written ($cancelled cancelled by the database;" \
        "$unread of requests whose answer wrk did not read as it stopped, at most $conns)"
    echo "   reserved in $reserved_ms ms ($(python3 -c "print(round($accepted * 1000 / $reserved_ms))")/s);" \
        "written within $written_ms ms of the first reservation ($(python3 -c "print(round($rows * 1000 / $written_ms))")/s);" \
        "queue drained $((drained - stopped)) ms after the load"
    echo "   units sold $sold of $units: oversold $(python3 -c "print(max(0, $sold - $units))");" \
        "lost (202 without an order) $lost; units left: database $left, Redis $available;" \
        "ledger $([ $((left + sold)) = "$units" ] && echo holds || echo BROKEN)"
    eval "${name}_accepted=$accepted ${name}_rows=$rows ${name}_written_ms=$written_ms ${name}_reserved_ms=$reserved_ms"
}

echo "== 1. the sale: $stock units, one per buyer, $buyers buyers, wrk -c$conns 10s =="
run sale "$stock" 1 10s
echo "== 2a. a burst: $burst units, five per buyer, writers as fast as they go =="
run burst "$burst" 5 10s
burst_per_s=$(python3 -c "print(round($burst_accepted * 1000 / $burst_reserved_ms))")
echo "== 2b. the burst again, writers paced at $pace orders/s, $rounds rounds each followed by ${pg_slice}s of pgbench =="
restart "WEAPP__ORDER__FLASH_SALE__MAX_QUEUED=$((burst + 1)) WEAPP__ORDER__FLASH_SALE__MAX_WRITES_PER_S=$pace"
paced_rounds=()
for round in $(seq 1 "$rounds"); do
    run paced "$burst" 5 10s
    per_s=$(python3 -c "print(round($paced_accepted * 1000 / $paced_reserved_ms))")
    tps=$(pgbench_tps "$pg_slice" "$work/pgbench-$round.txt")
    echo "   round $round: $per_s reservations/s; pgbench right after: $(printf %.0f "$tps") tps;" \
        "ratio $(python3 -c "print(f'{$per_s / $tps:.1f}')")x"
    paced_rounds+=("$per_s:$tps")
done
echo "== 3. sustained: a stock that does not run out, no per-buyer limit, $duration (queue bound 20,000) =="
restart ""
run sustained 1000000000 1000000000 "$duration"
sustained_per_s=$(python3 -c "print(round($sustained_accepted / ${duration%s}))")
written_per_s=$(python3 -c "print(round($sustained_rows * 1000 / $sustained_written_ms))")

echo "app peak RSS: $(peak_rss)"
kill "$app" && wait "$app" 2>/dev/null || true
app=
echo "== 4. the one-order transaction on the same hot row (pgbench -c$pool, ${duration}) =="
pg_tps=$(pgbench_tps "${duration%s}" "$work/pgbench.txt")
cat "$work/pgbench.txt"
python3 -c "
import statistics
pg = float('$pg_tps')
rounds = [tuple(map(float, r.split(':'))) for r in '${paced_rounds[*]}'.split()]
ratios = sorted(rate / tps for rate, tps in rounds)
print(f'burst: {$burst_per_s} reservations/s = {$burst_per_s / pg:.1f}x pgbench hot row ({pg:.0f} tps)')
print('writers paced, each round against pgbench right after it: '
      + ', '.join(f'{rate:.0f}/s = {rate / tps:.1f}x ({tps:.0f} tps)' for rate, tps in rounds)
      + f'; median {statistics.median(ratios):.1f}x')
print(f'sustained: {$sustained_per_s} reservations/s ({$sustained_per_s / pg:.1f}x), {$written_per_s} orders written/s ({$written_per_s / pg:.1f}x)')"
