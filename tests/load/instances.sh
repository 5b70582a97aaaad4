#!/usr/bin/env bash
# The cost of sharing: POST /api/orders and GET /api/me against 1, 2 and 3 instances of
# the example app on this one machine (same cores, so more instances cannot be
# faster; the figure is what sharing PostgreSQL, Redis and the event stream costs),
# with wrk's 64 connections split evenly over the instances (one wrk per instance,
# 2 threads in all). For the order runs, the order events' trip through the Redis
# stream: events handled per consumer group and per instance, and how far behind
# the groups were when the load stopped.
# Needs the services tests/setup.sh starts and wrk (apt-get install -y wrk).
# Usage: tests/load/instances.sh [duration, default 20s]
source "$(dirname "$0")/lib.sh"
duration=${1:-20s}

psql -h 127.0.0.1 -U postgres -d "$db" -qc "UPDATE stock SET qty = 1000000000 WHERE product_id = 1"
token=$(login o_load_instances 13812348000)
stream="weapp_load_$$:events"

# load <script> <instances>: one wrk per instance, at the same time; prints the
# requests per second of all of them and the worst p99.
load() {
    local script=$1 n=$2 i
    local threads=$((n == 1 ? 2 : 1)) connections=$((64 / n)) pids=()
    for i in $(seq 0 $((n - 1))); do
        RUN="n$n-i$i-" TOKEN=$token wrk -t"$threads" -c"$connections" -d"$duration" \
            -s "tests/load/$script" --latency "http://127.0.0.1:$((port + i))" \
            > "$work/wrk-$script-$n-$i.txt" &
        pids+=($!)
    done
    wait "${pids[@]}"
    python3 - "$work" "$script" "$n" <<'PY'
import re, sys, glob
work, script, n = sys.argv[1:]
rps, p99, errors = 0.0, 0.0, 0
for path in sorted(glob.glob(f"{work}/wrk-{script}-{n}-*.txt")):
    text = open(path).read()
    rps += float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    m = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)", text, re.M)
    value = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
    p99 = max(p99, value)
    errors += int(re.search(r"non-2xx or errors: (\d+)", text).group(1))
print(f"{script} on {n} instance(s): {rps:.0f} req/s, worst p99 {p99:.1f} ms, {errors} errors")
PY
}

# How far the consumer groups were behind (lag + pending) when the load stopped, and
# the events each instance's consumers have handled so far (its /metrics).
relay_report() {
    local behind i handled
    behind=$(redis-cli -h 127.0.0.1 --raw XINFO GROUPS "$stream" | python3 -c "
import sys
words = sys.stdin.read().split()
print(sum(int(words[i + 1]) for i, w in enumerate(words[:-1])
          if w in ('pending', 'lag') and words[i + 1].isdigit()))")
    handled=""
    for i in $(seq 0 $(("${#apps[@]}" - 1))); do
        handled+=" $(curl -fs "http://127.0.0.1:$((port + i))/metrics" | awk \
            '/^events_relay_handled_total/ && /outcome="handled"/ {n += $NF} END {printf "%d", n}')"
    done
    echo "  relay: $behind events behind when the load stopped; handled so far per instance:$handled"
}

for n in 1 2 3; do
    while [ "${#apps[@]}" -lt "$n" ]; do
        start_app $((port + ${#apps[@]}))
    done
    echo "== $n instance(s) =="
    appended0=$(redis-cli -h 127.0.0.1 XLEN "$stream")
    load orders.lua "$n"
    appended1=$(redis-cli -h 127.0.0.1 XLEN "$stream")
    relay_report
    echo "  events appended during the run: $((appended1 - appended0))" \
        "($(python3 -c "print(round(($appended1 - $appended0) / ${duration%s}))") events/s)"
    load me.lua "$n"
done
