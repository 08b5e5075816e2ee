#!/usr/bin/env bash
# Side-by-side ingest benchmark: Relay (embedded and Redis stores) against the
# minimal ceilings of bench/ceiling, in one run, with the same load (wrk,
# seed-sized bodies with a unique mid each) on this machine.
#
#   bench/ingest.sh [DURATION] [CONNECTIONS]     defaults: 10s 64
#   ROWS=redis bench/ingest.sh ...               only the two Redis rows
#
# Needs wrk and redis-server (apt-get install wrk redis-server). Prints a
# Markdown table; the numbers are what docs/benchmarks.md publishes.
set -euo pipefail
cd "$(dirname "$0")/.."
# relay serve sets GOGC=800 itself unless GOGC is set (internal/gctune); the
# ceilings get the same, so both sides run with the same garbage collector.
export GOGC=${GOGC:-800}
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

ticks() { awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat" 2>/dev/null || echo 0; } # CPU of a process and its reaped children (redis AOF rewrites), 1/100 s
busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }        # CPU of the whole machine

run_wrk() { # $1 name, $2 url; the server is the last process started
	local srv=${PIDS[-1]} rds=${REDIS_PID:-} s0 r0=0 m0 t0 out wrk_cpu
	s0=$(ticks "$srv"); [[ -n $rds ]] && r0=$(ticks "$rds"); m0=$(busy); t0=$(date +%s%N)
	out=$( { TIMEFORMAT='%U %S'; time wrk -t2 -c"$CONNS" -d"$DUR" --latency -s bench/post.lua "$2"; } 2>"$WORK/wrk.time")
	local el=$(( ($(date +%s%N) - t0) / 10000000 )) # elapsed, 1/100 s
	local s_cpu=$(( 100 * ($(ticks "$srv") - s0) / el )) r_cpu=0 m_cpu=$(( 100 * ($(busy) - m0) / el ))
	[[ -n $rds ]] && r_cpu=$(( 100 * ($(ticks "$rds") - r0) / el ))
	wrk_cpu=$(awk -v el="$el" '{printf "%d", 100 * ($1 + $2) * 100 / el}' "$WORK/wrk.time")
	local rps p50 p99 non2xx
	rps=$(awk '/^Requests\/sec/ {printf "%d", $2}' <<<"$out")
	p50=$(awk '$1=="50%" {print $2}' <<<"$out")
	p99=$(awk '$1=="99%" {print $2}' <<<"$out")
	non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
	printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$rps" "$p50" "$p99" "${non2xx:-0}" \
		"$s_cpu" "$r_cpu" "$wrk_cpu" "$(( m_cpu - s_cpu - r_cpu - wrk_cpu ))"
}

start() { # $1 port, rest: command
	local port=$1; shift
	"$@" >"$WORK/$port.log" 2>&1 &
	PIDS+=($!)
	wait_port "$port"
}

stop_last() { kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true; unset 'PIDS[-1]'; }

# Each Redis run gets a fresh, empty redis-server: with one shared server the
# second run's AOF rewrites would also copy the first run's data.
start_redis() { # $1 name
	mkdir -p "$WORK/redis-$1"
	start $REDIS_PORT redis-server --port $REDIS_PORT --bind 127.0.0.1 --dir "$WORK/redis-$1" \
		--appendonly yes --appendfsync everysec --save "" --daemonize no
	REDIS_PID=${PIDS[-1]}
}
stop_redis() { stop_last; REDIS_PID=; }
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); load: wrk -t2 -c$CONNS -d$DUR, seed-sized JSON bodies, unique mid each"
echo
echo "CPU columns: % of one core while wrk ran (the machine has $(nproc)00%); \"other\" is everything else on the machine."
echo
echo "| server | req/s | p50 | p99 | non-2xx | CPU server | CPU redis | CPU wrk | CPU other |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"

if [[ ${ROWS:-all} != redis ]]; then
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
fi

start_redis ceiling
start 8184 "$WORK/ceiling" -mode redis -listen 127.0.0.1:8184 -redis "redis://127.0.0.1:$REDIS_PORT/1"
run_wrk "ceiling: net/http + one Redis Lua script (AOF everysec)" http://127.0.0.1:8184/hooks/1001
stop_last
stop_redis

relay_config 8185 9185 "{redis: {url: \"redis://127.0.0.1:$REDIS_PORT/2\", prefix: \"bench:\"}}" >"$WORK/redis.yaml"
start_redis relay
start 8185 "$WORK/relay" serve -config "$WORK/redis.yaml" -log-level warn
run_wrk "relay serve, redis store (AOF everysec)" http://127.0.0.1:8185/hooks/1001
stop_last
stop_redis
