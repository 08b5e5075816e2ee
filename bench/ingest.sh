#!/usr/bin/env bash
# Side-by-side ingest benchmark: Relay (embedded and Redis stores) against the
# minimal ceilings of bench/ceiling, in one run, with the same load (wrk,
# seed-sized bodies with a unique mid each) on this machine.
#
#   bench/ingest.sh [DURATION] [CONNECTIONS]     defaults: 10s 64
#
# Needs wrk and redis-server (apt-get install wrk redis-server). Prints a
# Markdown table; the numbers are what docs/benchmarks.md publishes.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10s}
CONNS=${2:-64}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

command -v wrk >/dev/null || { echo "wrk is missing (apt-get install wrk)" >&2; exit 1; }
go build -o "$WORK/relay" ./cmd/relay
go build -o "$WORK/ceiling" ./bench/ceiling

REDIS_PORT=6390
redis-server --port $REDIS_PORT --bind 127.0.0.1 --dir "$WORK" --appendonly yes \
	--appendfsync everysec --save "" --daemonize no >"$WORK/redis.log" 2>&1 &
PIDS+=($!)

wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }

relay_config() { # $1 listen port, $2 admin port, $3 store yaml
	cat <<YAML
listen: "127.0.0.1:$1"
admin: {listen: "127.0.0.1:$2"}
store: $3
routes:
  - {webhook_id: "1001", to: [crm, archive]}
# Agent destinations: deliveries stay queued (no agent connects during the
# run), so this measures ingest alone, as the ceilings do.
agents: [{name: bench, token: bench-token}]
destinations:
  - {name: crm, url: "http://127.0.0.1:1/crm", agent: bench}
  - {name: archive, url: "http://127.0.0.1:1/archive", agent: bench}
YAML
}

run_wrk() { # $1 name, $2 url
	local out
	out=$(wrk -t2 -c"$CONNS" -d"$DUR" --latency -s bench/post.lua "$2")
	local rps p50 p99 non2xx
	rps=$(awk '/^Requests\/sec/ {printf "%d", $2}' <<<"$out")
	p50=$(awk '$1=="50%" {print $2}' <<<"$out")
	p99=$(awk '$1=="99%" {print $2}' <<<"$out")
	non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
	printf '| %s | %s | %s | %s | %s |\n' "$1" "$rps" "$p50" "$p99" "${non2xx:-0}"
}

start() { # $1 port, rest: command
	local port=$1; shift
	"$@" >"$WORK/$port.log" 2>&1 &
	PIDS+=($!)
	wait_port "$port"
}

stop_last() { kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true; unset 'PIDS[-1]'; }

wait_port $REDIS_PORT
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); load: wrk -t2 -c$CONNS -d$DUR, seed-sized JSON bodies, unique mid each"
echo
echo "| server | req/s | p50 | p99 | non-2xx |"
echo "| --- | --- | --- | --- | --- |"

start 8181 "$WORK/ceiling" -mode bare -listen 127.0.0.1:8181
run_wrk "ceiling: bare net/http, 202" http://127.0.0.1:8181/hooks/1001
stop_last

start 8182 "$WORK/ceiling" -mode bolt -listen 127.0.0.1:8182 -path "$WORK/ceil-bolt"
run_wrk "ceiling: net/http + bbolt Batch per request" http://127.0.0.1:8182/hooks/1001
stop_last

relay_config 8183 9183 "{embedded: {path: $WORK/relay-embedded}}" >"$WORK/embedded.yaml"
start 8183 "$WORK/relay" serve -config "$WORK/embedded.yaml" -log-level warn
run_wrk "relay serve, embedded store" http://127.0.0.1:8183/hooks/1001
stop_last

start 8184 "$WORK/ceiling" -mode redis -listen 127.0.0.1:8184 -redis "redis://127.0.0.1:$REDIS_PORT/1"
run_wrk "ceiling: net/http + one Redis Lua script (AOF everysec)" http://127.0.0.1:8184/hooks/1001
stop_last

relay_config 8185 9185 "{redis: {url: \"redis://127.0.0.1:$REDIS_PORT/2\", prefix: \"bench:\"}}" >"$WORK/redis.yaml"
start 8185 "$WORK/relay" serve -config "$WORK/redis.yaml" -log-level warn
run_wrk "relay serve, redis store (AOF everysec)" http://127.0.0.1:8185/hooks/1001
stop_last
