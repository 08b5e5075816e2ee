# bench/setup.sh: what bench/latency.sh and bench/drain.sh share; sourced,
# not run. It builds bench/ceiling, bench/load and (unless RELAY names a
# binary) relay into a temporary directory $D, removed on exit with every
# process listed in $PIDS, names the loopback ports (18180-18183), and
# starts a bare sink (bench/ceiling -mode bare, pid $SPID).
ROOT=$(cd "$(dirname "$0")/.." && pwd)
D=$(mktemp -d)
trap 'kill ${PIDS:-} 2>/dev/null; wait 2>/dev/null; rm -rf "$D"' EXIT
(cd "$ROOT" && go build -o "$D/ceiling" ./bench/ceiling && go build -o "$D/load" ./bench/load) || exit 1
RELAY=${RELAY:-}
if [ -z "$RELAY" ]; then
	(cd "$ROOT" && go build -o "$D/relay" ./cmd/relay) || exit 1
	RELAY=$D/relay
fi
SINK=127.0.0.1:18180 LISTEN=127.0.0.1:18181 ADMIN=127.0.0.1:18182 RPORT=18183
"$D/ceiling" -mode bare -listen $SINK >/dev/null 2>&1 &
SPID=$!
PIDS="$SPID"

# start_redis starts a redis-server with AOF everysec on $RPORT (pid $RPID).
start_redis() {
	redis-server --port $RPORT --bind 127.0.0.1 --dir "$D" --appendonly yes --appendfsync everysec \
		--save "" --daemonize no >/dev/null 2>&1 &
	RPID=$!
	PIDS="$PIDS $RPID"
}

# cpu prints the CPU clock ticks (user + system) of process $1 so far, or 0
# for none.
cpu() { [ -n "${1:-}" ] && awk '{print $14+$15}' "/proc/$1/stat" || echo 0; }
