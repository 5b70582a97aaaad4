#!/usr/bin/env bash
# Load test of GET /api/me and POST /api/auth/login: the example app built in release,
# on PostgreSQL + Redis, WeChat calls to the sandbox running as a process of its own
# (so the 400,000 wx.login codes the login run mints are not the app's memory), wrk
# with 64 connections.
# Needs the services tests/setup.sh starts and wrk (apt-get install -y wrk).
# Prints the app's peak RSS (VmHWM) at the end.
# Usage: tests/load/run.sh [duration, default 20s]
SANDBOX_HOST=1 source "$(dirname "$0")/lib.sh"
duration=${1:-20s}

# One user with a phone number, so /api/me decrypts a field.
token=$(login o_load 13812348000)
phone_code=$(curl -fs -X POST "$sandbox/__sandbox/phone-code" -d '{"openid":"o_load"}' | json "['code']")
curl -fs -X POST "$base/api/auth/phone" -H 'Content-Type: application/json' -H "Authorization: Bearer $token" \
    -d "{\"code\":\"$phone_code\"}" >/dev/null
curl -fs "$base/api/me" -H "Authorization: Bearer $token"; echo

echo "== GET /api/me =="
TOKEN=$token wrk -t2 -c64 -d"$duration" -s tests/load/me.lua --latency "$base"

echo "app peak RSS after GET /api/me: $(peak_rss)"

echo "== POST /api/auth/login =="
curl -fs -X POST "$sandbox/__sandbox/login" -d '{"openid":"o_load","count":400000}' \
    | python3 -c "import json,sys; print('\n'.join(json.load(sys.stdin)['codes']))" > "$work/codes.txt"
CODES="$work/codes.txt" THREADS=2 wrk -t2 -c64 -d"$duration" -s tests/load/login.lua --latency "$base"

# The app's peak resident memory over both runs (goal: 64 MB or less).
echo "app peak RSS after both: $(peak_rss)"
