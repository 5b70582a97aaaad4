#!/usr/bin/env bash
# Everything the test suite needs on a fresh machine, idempotently: PostgreSQL,
# MariaDB, Redis and a three-master Redis Cluster on 127.0.0.1 (started if they are
# down), and the tools the tests run (cargo-nextest, cargo-generate, mdbook,
# cargo-deny, cargo-semver-checks; installed with `cargo install` if they are
# missing). `tests/run.sh` calls it first.
set -euo pipefail

wait_for() {
    local name=$1 check=$2
    for _ in $(seq 1 60); do
        if eval "$check" >/dev/null 2>&1; then
            return 0
        fi
        sleep 1
    done
    echo "error: $name did not become ready within 60 s" >&2
    exit 1
}

# PostgreSQL 127.0.0.1:5432 (user postgres, trust auth)
if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
fi
wait_for PostgreSQL "pg_isready -h 127.0.0.1 -p 5432 -q"
psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1 \
    || psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE test"

# MariaDB 127.0.0.1:3306 (root, no password)
if ! mariadb-admin -h 127.0.0.1 -uroot ping >/dev/null 2>&1; then
    echo "starting MariaDB"
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
fi
wait_for MariaDB "mariadb-admin -h 127.0.0.1 -uroot ping"
mariadb -h 127.0.0.1 -uroot -e "CREATE DATABASE IF NOT EXISTS test"

# Redis 127.0.0.1:6379
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    echo "starting Redis"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi
wait_for Redis "redis-cli -h 127.0.0.1 -p 6379 ping"

# Redis Cluster 127.0.0.1:7000-7002: three masters, no replicas, nothing on disk
# (the test harness starts the same one when it is absent).
cluster_ports=(7000 7001 7002)
cluster_ok() {
    local port
    for port in "${cluster_ports[@]}"; do
        redis-cli -h 127.0.0.1 -p "$port" cluster info 2>/dev/null | grep -q "cluster_state:ok" || return 1
    done
}
if ! cluster_ok; then
    echo "starting the Redis Cluster"
    cluster_dir="${TMPDIR:-/tmp}/weapp-redis-cluster"
    for port in "${cluster_ports[@]}"; do
        if ! redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1; then
            mkdir -p "$cluster_dir/$port"
            redis-server --daemonize yes --bind 127.0.0.1 --port "$port" \
                --cluster-enabled yes --cluster-node-timeout 5000 --cluster-config-file nodes.conf \
                --save "" --appendonly no --dir "$cluster_dir/$port" --logfile "$cluster_dir/$port/redis.log"
        fi
        wait_for "Redis on port $port" "redis-cli -h 127.0.0.1 -p $port ping"
    done
    if ! cluster_ok; then
        # Half made by an interrupted start: begin again from empty nodes.
        for port in "${cluster_ports[@]}"; do
            if ! redis-cli -h 127.0.0.1 -p "$port" cluster info | grep -q "cluster_slots_assigned:0"; then
                redis-cli -h 127.0.0.1 -p "$port" flushall >/dev/null
                redis-cli -h 127.0.0.1 -p "$port" cluster reset hard >/dev/null
            fi
        done
        redis-cli --cluster create $(printf "127.0.0.1:%s " "${cluster_ports[@]}") \
            --cluster-replicas 0 --cluster-yes >/dev/null
    fi
    wait_for "the Redis Cluster" cluster_ok
fi

# Tools. `cargo install` puts them in $CARGO_INSTALL_ROOT/bin or $CARGO_HOME/bin;
# the caller's PATH may not hold that folder yet on a fresh machine.
tools_bin="${CARGO_INSTALL_ROOT:-${CARGO_HOME:-$HOME/.cargo}}/bin"
case ":$PATH:" in
    *":$tools_bin:"*) ;;
    *) export PATH="$tools_bin:$PATH" ;;
esac
install_tool() {
    local command=$1 crate=$2
    if ! command -v "$command" >/dev/null 2>&1; then
        echo "installing $crate (first run on this machine only; takes a few minutes)"
        cargo install --locked "$crate"
    fi
}
install_tool cargo-nextest cargo-nextest
# Newer cargo-generate releases need a newer rustc than this machine's.
install_tool cargo-generate cargo-generate@0.23.5
install_tool mdbook mdbook
install_tool cargo-deny cargo-deny@0.20.2
# Reads the rustdoc JSON of this toolchain (1.95); a newer rustc may need a newer one.
install_tool cargo-semver-checks cargo-semver-checks@0.51.0

# Python tools (tests/requirements.txt, every version pinned) in a virtual
# environment of their own; the tests find it through WEAPP_TEST_PYTHON.
venv="${XDG_CACHE_HOME:-$HOME/.cache}/weapp-test-venv"
if ! cmp -s tests/requirements.txt "$venv/requirements.txt" 2>/dev/null; then
    echo "installing the Python test tools (first run on this machine only)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/requirements.txt
    cp tests/requirements.txt "$venv/requirements.txt"
fi
export WEAPP_TEST_PYTHON="$venv/bin/python"
