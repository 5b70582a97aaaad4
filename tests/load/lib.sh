# Shared by the load scripts: builds the example app in release and serves it on a
# fresh PostgreSQL database with Redis; cleans up on exit. Source it, then use
# $base, $db, $work and json.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
port=${PORT:-18080}
db="weapp_load_$$"
base="http://127.0.0.1:$port"
# The operators' token of the instances (X-Admin-Token), for scripts that use the
# admin API.
admin_token="load-scripts-admin-token-$$-0123456789abcdef"

# APP_BIN: another build of the app to serve (e.g. a copy of an earlier release
# build, to compare two builds in turn); by default this checkout's, built here.
if [ -z "${APP_BIN:-}" ]; then
    cargo build --release -p example-app
    APP_BIN=$PWD/target/release/example-app
fi
psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $db"
work=$(mktemp -d)
apps=()
cleanup() {
    local pid
    for pid in "${apps[@]}" ${app:+"$app"}; do
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    done
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
    # The run's Redis keys too: left behind, they pile up over runs (a million keys
    # after a few) and slow every later run's Redis.
    redis-cli -h 127.0.0.1 --scan --pattern "weapp_load_$$:*" |
        xargs -r -n 1000 redis-cli -h 127.0.0.1 UNLINK > /dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# start_app <port>: one more instance of the app on <port>, sharing the database and
# Redis with the others; waits until it answers. Started one after the other, so the
# first one's generated development keys (under $work/data) serve them all.
# One user drives the whole load: the default rate limits and the per-user cap on
# unpaid orders are off, so the figures measure throughput, not the limits.
# APP_ENV: more settings for the instances, as `VAR=value VAR=value`.
start_app() {
    (
        cd "$work"
        WEAPP__DATABASE__URL="postgres://postgres@127.0.0.1:5432/$db" \
        WEAPP__DATABASE__MAX_CONNECTIONS=${DB_POOL:-16} \
        WEAPP__REDIS__URL="redis://127.0.0.1:6379" \
        WEAPP__REDIS__KEY_PREFIX="weapp_load_$$:" \
        WEAPP__SERVER__PORT=$1 \
        WEAPP__GUARD__RATE_LIMITS='[]' \
        WEAPP__AUTH__ADMIN_TOKENS__LOAD="$admin_token" \
        WEAPP__ORDER__MAX_PENDING_ORDERS=0 \
        WEAPP__ORDER__MAX_PENDING_UNITS=0 \
        WEAPP__OBSERVE__LOG_LEVEL=warn \
        exec env ${APP_ENV:-} "$APP_BIN"
    ) &
    apps+=($!)
    wait_healthy "http://127.0.0.1:$1" "the instance on port $1"
}
# wait_healthy <base url> <what>: waits until it answers /healthz, or exits saying
# that <what> did not answer.
wait_healthy() {
    for _ in $(seq 1 100); do curl -fs "$1/healthz" >/dev/null && return; sleep 0.2; done
    echo "$2 did not answer" >&2
    exit 1
}
# SANDBOX_HOST=1: the WeChat sandbox runs as a process of its own (the example app
# with its defaults, in $work/sandbox), as WeChat is another host, and the app calls
# it through wechat.base_url: the app's figures (CPU, memory) are then its own, not
# those of the sandbox's fixtures. $sandbox is where the sandbox answers either way.
sandbox=$base
if [ "${SANDBOX_HOST:-0}" = 1 ]; then
    sandbox_port=$((port + 100))
    mkdir -p "$work/sandbox"
    (
        cd "$work/sandbox"
        WEAPP__SERVER__PORT=$sandbox_port WEAPP__OBSERVE__LOG_LEVEL=warn \
            exec "$APP_BIN"
    ) &
    apps+=($!)
    sandbox="http://127.0.0.1:$sandbox_port"
    wait_healthy "$sandbox" "the sandbox host"
    # WeChat and WeChat Pay at the sandbox host, with the pay sandbox's published
    # sample merchant (plugins/pay/src/samples.rs), as the cluster tests do.
    sample() { sed -n "s/^pub const $1: &str = \"\(.*\)\";/\1/p" plugins/pay/src/samples.rs; }
    export WEAPP__WECHAT__SANDBOX=false WEAPP__WECHAT__BASE_URL=$sandbox \
        WEAPP__PAY__BASE_URL=$sandbox \
        WEAPP__PAY__MERCHANTS__SHOP__NOTIFY_URL="$base/api/pay/notify/shop" \
        WEAPP__PAY__MERCHANTS__SHOP__SERIAL_NO="$(sample MERCHANT_SERIAL)" \
        WEAPP__PAY__MERCHANTS__SHOP__APIV3_KEY="$(sample APIV3_KEY)" \
        WEAPP__PAY__MERCHANTS__SHOP__PUBLIC_KEY_ID="$(sample PUBLIC_KEY_ID)" \
        WEAPP__PAY__MERCHANTS__SHOP__PRIVATE_KEY="$(cat plugins/pay/sandbox-keys/merchant.key.pem)" \
        WEAPP__PAY__MERCHANTS__SHOP__PUBLIC_KEY="$(cat plugins/pay/sandbox-keys/platform-a.pub.pem)"
fi
start_app "$port"
app=${apps[-1]}

# The app's peak resident memory (VmHWM), e.g. "46120 kB".
peak_rss() { awk '/^VmHWM/ {print $2, $3}' "/proc/${1:-$app}/status"; }

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

# Logs in a sandbox user: login <openid> [phone] prints an access token.
login() {
    local code
    local fixture="{\"openid\":\"$1\"${2:+,\"phone\":\"$2\"}}"
    code=$(curl -fs -X POST "$sandbox/__sandbox/login" -d "$fixture" | json "['code']")
    curl -fs -X POST "$base/api/auth/login" -H 'Content-Type: application/json' \
        -d "{\"code\":\"$code\"}" | json "['access_token']"
}
