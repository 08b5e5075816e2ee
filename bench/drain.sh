#!/usr/bin/env bash
# bench/drain.sh: how fast one relay on Redis drains the backlog that a
# closed loop leaves behind, second by second, with the CPU of each process
# (clock ticks per interval). Not part of make bench; docs/benchmarks.md
# ("Sizing concurrency") has what it measured.
#
#   bench/drain.sh                 # destination concurrency 8, 10 s loop
#   CONC=16 DUR=5s bench/drain.sh
#   RELAY=/path/to/relay bench/drain.sh
#
# It starts a bare sink (bench/ceiling), its own redis-server (AOF
# everysec) and one `relay serve` with one route to the sink, runs
# bench/load in a closed loop (64 connections) for DUR, then polls
# relay_queue_depth every 0.2 s until it is 0. Delivery yields to ingest
# during the loop (README, "Delivery"), so most of the loop's callbacks
# are still queued when it ends. It uses ports 18180-18183 on 127.0.0.1.
set -u
. "$(dirname "$0")/setup.sh"
start_redis
cat >"$D/relay.yaml" <<YAML
listen: "$LISTEN"
admin: {listen: "$ADMIN"}
store: {redis: {url: "redis://127.0.0.1:$RPORT/0", prefix: "bench:"}}
routes:
  - {webhook_id: "1001", to: [sink]}
destinations:
  - {name: sink, url: "http://$SINK/relay", concurrency: ${CONC:-8}}
YAML
sleep 0.5
"$RELAY" serve -config "$D/relay.yaml" -log-level warn >"$D/relay.log" 2>&1 &
PID=$!
PIDS="$PIDS $PID"
for _ in $(seq 100); do curl -sf "http://$ADMIN/readyz" >/dev/null && break; sleep 0.1; done
depth() { curl -s "http://$ADMIN/metrics" | awk '/^relay_queue_depth\{destination="sink"\}/{print $2}'; }
"$D/load" -url "http://$LISTEN/hooks/1001" -conns 64 -duration "${DUR:-10s}"
T0=$(date +%s%N)
start=$(depth)
prev=$start c0=$(cpu $PID) r0=$(cpu $RPID) s0=$(cpu $SPID)
echo "queued when the loop ended: $start"
# Polled every 0.2 s, so the end is seen within 0.2 s; a line per second.
i=0
while :; do
	sleep 0.2
	d=$(depth)
	i=$((i + 1))
	if [ $((i % 5)) = 0 ] || [ "$d" = 0 ]; then
		c=$(cpu $PID) r=$(cpu $RPID) s=$(cpu $SPID)
		echo "$(( ($(date +%s%N) - T0) / 1000000 )) ms: depth $d, $((prev - d)) delivered; ticks relay $((c - c0)), redis-server $((r - r0)), sink $((s - s0))"
		prev=$d c0=$c r0=$r s0=$s
	fi
	[ "$d" = 0 ] && break
done
ms=$(( ($(date +%s%N) - T0) / 1000000 ))
echo "drained $start in $ms ms: $(( start * 1000 / ms ))/s"
