#!/usr/bin/env bash
# Load test of WeChat Pay notifications: POST /api/pay/notify/shop on PostgreSQL +
# Redis, each request a distinct payment of a distinct pending order, signed and
# encrypted as WeChat Pay does (with the pay sandbox's sample keys, which the
# development app trusts). Every request is verified (RSA-SHA256 over the raw body),
# decrypted (AES-256-GCM) and applied (the order locked, checked, paid, its event
# written) — the figure is notifications applied per second. Once the prepared
# notifications run out they repeat, as duplicates; the script reports how many
# orders were paid, so only first deliveries count.
# Needs the services tests/setup.sh starts and wrk (apt-get install -y wrk).
# Usage: tests/load/pay-notify.sh [duration, default 10s] [notifications, default 40000]
source "$(dirname "$0")/lib.sh"
duration=${1:-10s}
count=${2:-40000}
openid=o_load_pay

cargo build --release -q -p weapp-pay --example signed_notifications
token=$(login "$openid")
user_id=$(curl -fs "$base/api/me" -H "Authorization: Bearer $token" | json "['id']")
now_ms=$(($(date +%s) * 1000))
first=$(psql -h 127.0.0.1 -U postgres -d "$db" -tAc "SELECT COALESCE(MAX(id), 0) + 1 FROM orders")
psql -h 127.0.0.1 -U postgres -d "$db" -qc "
    INSERT INTO orders (id, user_id, status, total_fen, version, created_at, updated_at, expires_at)
    SELECT g, $user_id, 'pending', 100, 0, $now_ms, $now_ms, $now_ms + 3600000
    FROM generate_series($first, $first + $count - 1) AS g;
    SELECT setval(pg_get_serial_sequence('orders', 'id'), $first + $count)"
echo "signing $count notifications..."
target/release/examples/signed_notifications wx00000000example 1900000109 "$openid" 100 \
    "$first" "$count" > "$work/notifications.tsv"

echo "== POST /api/pay/notify/shop (wrk -c64, $duration) =="
NOTIFICATIONS="$work/notifications.tsv" wrk -t2 -c64 -d"$duration" -s tests/load/pay-notify.lua \
    --latency "$base" | tee "$work/wrk.txt"
paid=$(psql -h 127.0.0.1 -U postgres -d "$db" -tAc "SELECT COUNT(*) FROM orders WHERE status = 'paid'")
anomalies=$(psql -h 127.0.0.1 -U postgres -d "$db" -tAc \
    "SELECT COUNT(*) FROM order_outbox WHERE topic = 'payment.anomaly'")
secs=${duration%s}
echo "orders paid: $paid of $count ($(python3 -c "print(f'{$paid / $secs:.0f}')") applied/s); anomalies: $anomalies"
if [ "$paid" -ge "$count" ]; then
    echo "note: every prepared notification was applied; pass a larger count for a clean figure"
fi
