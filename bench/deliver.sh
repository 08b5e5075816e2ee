#!/usr/bin/env bash
# Delivery throughput against its ceiling (BenchmarkDeliverBacklog in
# relay/deliver), run several times, interleaved between builds, so that
# builds compared see the same machine: this benchmark's ratio moves by
# several points from one run to the next on a shared 2-core machine, and
# only medians over interleaved runs tell builds apart.
#
#   bench/deliver.sh [RUNS] [REV ...]     defaults: 5, the working tree
#   STORES='bolt|none' bench/deliver.sh 5 HEAD~3 .
#
# A REV is a git revision, or "." for the working tree. STORES picks the
# stores (a regular expression over bolt, redis and none; default all
# three). RELAY_BENCH_EVENTS and RELAY_BENCH_CONCURRENCY pass through (see
# relay/deliver/bench_test.go). Prints one Markdown row per run and a
# summary row per build and store with the median; docs/benchmarks.md
# publishes such tables.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
shift || true
REVS=("$@")
[[ ${#REVS[@]} -gt 0 ]] || REVS=(.)
STORES=${STORES:-bolt|redis|none}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# build REV: compile the delivery benchmark of REV into $WORK/N.test.
build() {
	local rev=$1 out=$2 src=.
	if [[ $rev != . ]]; then
		src=$WORK/src-$(basename "$out")
		mkdir -p "$src"
		git archive "$rev" | tar -x -C "$src"
	fi
	(cd "$src" && go test -c -o "$out" ./relay/deliver/)
}

for i in "${!REVS[@]}"; do
	build "${REVS[$i]}" "$WORK/$i.test"
done

metric() { grep -oE "[0-9.]+ $1" <<<"$2" | awk '{print $1}'; }

echo "| run | build | store | relay deliveries/s | ceiling POSTs/s | relay / ceiling | relay CPU µs/delivery | relay / ceiling machine CPU µs | relay / ceiling CPUs busy | relay allocs/delivery | relay / ceiling switches | deliveries/commit | pages/delivery | % of Redis stream forwarder | redis-server CPU µs/delivery | AOF rewrites during the relay |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for run in $(seq "$RUNS"); do
	for i in "${!REVS[@]}"; do
		# The benchmark reads its environment and finds testdata relative to
		# the package directory.
		out=$(cd relay/deliver && "$WORK/$i.test" -test.run '^$' -test.bench "DeliverBacklog/store=($STORES)\$" -test.benchtime 1x 2>&1) ||
			{ echo "$out" >&2; exit 1; }
		while read -r line; do
			[[ $line == BenchmarkDeliverBacklog/* ]] || continue
			store=$(sed -E 's/^BenchmarkDeliverBacklog\/store=([a-z]+).*/\1/' <<<"$line")
			ratio=$(metric '%-of-ceiling' "$line")
			echo "$i $store $ratio" >>"$WORK/ratios"
			echo "| $run | ${REVS[$i]} | $store | $(metric relay-deliveries/s "$line") | $(metric ceiling-posts/s "$line") | $ratio % | $(metric relay-cpu-us/delivery "$line") | $(metric relay-machine-cpu-us/delivery "$line") / $(metric ceiling-machine-cpu-us/post "$line") | $(metric relay-cpus-busy "$line") / $(metric ceiling-cpus-busy "$line") | $(metric relay-allocs/delivery "$line") | $(metric relay-switches/delivery "$line") / $(metric ceiling-switches/post "$line") | $(metric deliveries/commit "$line") | $(metric pages/delivery "$line") | $(metric '%-of-forwarder' "$line") | $(metric redis-cpu-us/delivery "$line") | $(metric redis-forks "$line") |"
		done <<<"$out"
	done
done

echo
echo "| build | store | runs | median relay / ceiling | lowest | highest |"
echo "| --- | --- | --- | --- | --- | --- |"
for i in "${!REVS[@]}"; do
	for store in bolt redis none; do
		vals=$(awk -v i="$i" -v s="$store" '$1 == i && $2 == s {print $3}' "$WORK/ratios" | sort -n)
		[[ -n $vals ]] || continue
		n=$(wc -l <<<"$vals")
		med=$(awk '{v[NR] = $1} END {printf "%.1f\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}' <<<"$vals")
		echo "| ${REVS[$i]} | $store | $n | $med % | $(head -1 <<<"$vals") % | $(tail -1 <<<"$vals") % |"
	done
done
