#!/usr/bin/env bash
# bench/latency.sh: one controlled latency run, as in docs/benchmarks.md
# ("Provider latency: where the time goes"). Not part of make bench.
#
# It starts a bare sink (bench/ceiling), a fresh store (the embedded one, or
# its own redis-server with AOF everysec) and one `relay serve` with one
# route to the sink; warms it with a closed loop, waits for the queue to
# drain, then runs bench/load in an open loop at RATE for 10 s and prints
# its JSON line, how many times redis-server forked during it (an AOF
# rewrite), how long the queue took to drain after it, and the CPU of relay
# and redis-server over the load and the drain (clock ticks).
#
#   bench/latency.sh redis 3400
#   NODELIVER=1 bench/latency.sh redis 3400   # the destination served by an agent that never comes: ingest alone
#   SPLIT=1 bench/latency.sh redis 3400       # ingest-only relay in front, delivery in a second relay on the same Redis
#   WARM=10s CONC=8 RELAY=/path/to/relay bench/latency.sh embedded 2000
#
# Compare two builds by alternating runs of each (RELAY=...). Other
# environment variables reach relay serve (GOGC=200, say). It uses ports
# 18180-18192 on 127.0.0.1.
set -u
STORE=${1:?usage: bench/latency.sh embedded|redis RATE}
RATE=${2:?usage: bench/latency.sh embedded|redis RATE}
. "$(dirname "$0")/setup.sh"
RPID=""
if [ "$STORE" = redis ]; then
	start_redis
	STY="{redis: {url: \"redis://127.0.0.1:$RPORT/0\", prefix: \"bench:\"}}"
else
	STY="{embedded: {path: \"$D/embedded\"}}"
fi
AGENT=""
[ -n "${NODELIVER:-}${SPLIT:-}" ] && AGENT=", agent: bench"
cat >"$D/relay.yaml" <<YAML
listen: "$LISTEN"
admin: {listen: "$ADMIN"}
store: $STY
routes:
  - {webhook_id: "1001", to: [sink]}
destinations:
  - {name: sink, url: "http://$SINK/relay", concurrency: ${CONC:-4}$AGENT}
agents: [{name: bench, token: bench-agent-token-not-used-0123456789}]
YAML
sleep 0.5
"$RELAY" serve -config "$D/relay.yaml" -log-level warn >"$D/relay.log" 2>&1 &
PID=$!
PIDS="$PIDS $PID"
METRICS=http://$ADMIN/metrics
if [ -n "${SPLIT:-}" ]; then
	sed -e "s/$LISTEN/127.0.0.1:18191/; s/$ADMIN/127.0.0.1:18192/; s/, agent: bench//" "$D/relay.yaml" >"$D/deliver.yaml"
	"$RELAY" serve -config "$D/deliver.yaml" -log-level warn >"$D/deliver.log" 2>&1 &
	PIDS="$PIDS $!"
	METRICS=http://127.0.0.1:18192/metrics
fi
for _ in $(seq 100); do curl -sf "http://$ADMIN/readyz" >/dev/null && break; sleep 0.1; done
# forks prints redis-server's total_forks (0 without one).
forks() {
	[ -n "$RPID" ] || { echo 0; return; }
	redis-cli -p "$RPORT" info stats | tr -d '\r' | awk -F: '$1 == "total_forks" {print $2}'
}
drained() {
	[ -n "${NODELIVER:-}" ] && return
	for _ in $(seq 3000); do
		curl -s "$METRICS" | grep -q '^relay_queue_depth{destination="sink"} 0$' && return
		sleep 0.1
	done
	echo "latency.sh: the queue did not drain" >&2
}
"$D/load" -url "http://$LISTEN/hooks/1001" -conns 64 -duration "${WARM:-3s}" >/dev/null
drained
sleep 2
C0=$(cpu $PID) R0=$(cpu "$RPID") F0=$(forks)
"$D/load" -url "http://$LISTEN/hooks/1001" -rate "$RATE" -conns 512 -duration 10s
[ -n "$RPID" ] && echo "redis-server forks during the load (AOF rewrites): $(( $(forks) - F0 ))"
T0=$(date +%s%N)
drained
[ -z "${NODELIVER:-}" ] && echo "drained $(( ($(date +%s%N) - T0) / 1000000 )) ms after the load"
echo "cpu ticks: relay $(( $(cpu $PID) - C0 )), redis-server $(( $(cpu "$RPID") - R0 ))"
