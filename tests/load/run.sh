#!/usr/bin/env bash
# Load test of GET /api/me and POST /api/auth/login: the example app built in release,
# on PostgreSQL + Redis, WeChat calls to the embedded sandbox, wrk with 64 connections.
# Needs the services of .ci/run and wrk (apt-get install -y wrk).
# Usage: tests/load/run.sh [duration, default 20s]
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${1:-20s}
port=18080
db="weapp_load_$$"
base="http://127.0.0.1:$port"

cargo build --release -p example-app
psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $db"
work=$(mktemp -d)
cleanup() {
    [ -n "${app:-}" ] && kill "$app" 2>/dev/null && wait "$app" 2>/dev/null || true
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
    rm -rf "$work"
}
trap cleanup EXIT

(
    cd "$work"
    WEAPP__DATABASE__URL="postgres://postgres@127.0.0.1:5432/$db" \
    WEAPP__DATABASE__MAX_CONNECTIONS=${DB_POOL:-16} \
    WEAPP__REDIS__URL="redis://127.0.0.1:6379" \
    WEAPP__REDIS__KEY_PREFIX="weapp_load_$$:" \
    WEAPP__SERVER__PORT=$port \
    WEAPP__OBSERVE__LOG_LEVEL=warn \
    exec "$OLDPWD/target/release/example-app"
) &
app=$!
for _ in $(seq 1 100); do curl -fs "$base/healthz" >/dev/null && break; sleep 0.2; done

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

# One user with a phone number, so /api/me decrypts a field.
code=$(curl -fs -X POST "$base/__sandbox/login" -d '{"openid":"o_load","phone":"13812348000"}' | json "['code']")
token=$(curl -fs -X POST "$base/api/auth/login" -H 'Content-Type: application/json' -d "{\"code\":\"$code\"}" | json "['access_token']")
phone_code=$(curl -fs -X POST "$base/__sandbox/phone-code" -d '{"openid":"o_load"}' | json "['code']")
curl -fs -X POST "$base/api/auth/phone" -H 'Content-Type: application/json' -H "Authorization: Bearer $token" \
    -d "{\"code\":\"$phone_code\"}" >/dev/null
curl -fs "$base/api/me" -H "Authorization: Bearer $token"; echo

echo "== GET /api/me =="
TOKEN=$token wrk -t2 -c64 -d"$duration" -s tests/load/me.lua --latency "$base"

echo "== POST /api/auth/login =="
curl -fs -X POST "$base/__sandbox/login" -d '{"openid":"o_load","count":400000}' \
    | python3 -c "import json,sys; print('\n'.join(json.load(sys.stdin)['codes']))" > "$work/codes.txt"
CODES="$work/codes.txt" THREADS=2 wrk -t2 -c64 -d"$duration" -s tests/load/login.lua --latency "$base"
