#!/usr/bin/env bash
# bench/open.sh: how long `relay serve` takes to answer /readyz on an
# embedded store that holds N events (default 250000), each with four
# queued deliveries to agent destinations nobody serves (as make bench's
# RSS row queues them). It prints the start on an empty store, the closed
# loop that queued them, the file's size, then a restart with the file in
# the page cache (warm) and, when it can drop the page cache (root), one
# without (cold). Not part of make bench; docs/benchmarks.md, "Embedded
# store: time to start".
#
#   bench/open.sh
#   N=1000000 RELAY=/path/to/relay bench/open.sh
set -u
. "$(dirname "$0")/setup.sh"
cat >"$D/relay.yaml" <<YAML
listen: "$LISTEN"
admin: {listen: "$ADMIN"}
store: {embedded: {path: "$D/emb"}}
routes:
  - {webhook_id: "1002", to: [q1, q2, q3, q4]}
agents: [{name: bench, token: bench-agent-token-not-used-0123456789}]
destinations:
  - {name: q1, url: "http://127.0.0.1:1/q1", agent: bench}
  - {name: q2, url: "http://127.0.0.1:1/q2", agent: bench}
  - {name: q3, url: "http://127.0.0.1:1/q3", agent: bench}
  - {name: q4, url: "http://127.0.0.1:1/q4", agent: bench}
YAML
# start runs relay serve and prints how long it took to be ready, and its
# resident memory: anonymous, and file-backed (relay.db mapped).
start() {
	local t0
	t0=$(date +%s%N)
	"$RELAY" serve -config "$D/relay.yaml" -log-level warn >>"$D/relay.log" 2>&1 &
	PID=$!
	PIDS="$PIDS $PID"
	for _ in $(seq 12000); do curl -sf "http://$ADMIN/readyz" >/dev/null && break; sleep 0.01; done
	echo "$1: ready after $(( ($(date +%s%N) - t0) / 1000000 )) ms;" \
		"$(grep -E 'RssAnon|RssFile' "/proc/$PID/status" | tr -s ' \t' ' ' | paste -sd' ')"
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null; }
start empty
"$D/load" -url "http://$LISTEN/hooks/1002" -conns 64 -duration 1h -count "${N:-250000}"
stop
echo "relay.db: $(stat -c %s "$D/emb/relay.db") bytes"
start warm
stop
sync
if echo 3 2>/dev/null >/proc/sys/vm/drop_caches; then
	start cold
	stop
else
	echo "cold: skipped (dropping the page cache needs root)"
fi
