#!/usr/bin/env bash
# The cost of the receive-steering hooks at a high packet rate: a bulk TCP
# stream over a veth pair between two network namespaces (receiver pinned to
# CPU 0, sender to CPU 1; the sender's veth caps GSO packets at 1500 bytes so
# every segment is its own packet and the hooks run per segment), in
# alternating rounds:
#   untraced  no tracer
#   nettrace  nettrace's usual hooks (bench/steering-consumer.js)
#   steering  the same plus the steering hooks, sampled once a second as `nettrace steering` does
#
#   sudo bash bench/steering.sh
# Environment: ROUNDS=5 SECONDS_PER_ROUND=5 VARIANTS="untraced nettrace steering"
#   GSO_MAX_SIZE=1500 (65536: the veth default, a few large packets instead)
#   RPS_CPUS=0        the receiving queue's rps_cpus mask (e.g. 1: RPS on, so the entry hooks count too)
# Prints a table of medians; every measurement goes to bench/results/steering.json.
set -euo pipefail

cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
SECS=${SECONDS_PER_ROUND:-5}
VARIANTS=${VARIANTS:-untraced nettrace steering}
GSO_MAX_SIZE=${GSO_MAX_SIZE:-1500}
RPS_CPUS=${RPS_CPUS:-0}
BUILD=bench/build
RESULTS=bench/results
ID=$$
NS_S=nts-b$ID-s NS_R=nts-b$ID-r IF_S=ntsb${ID}s IF_R=ntsb${ID}r
ADDR_S=10.212.0.1 ADDR_R=10.212.0.2 PORT=5300

die() { echo "bench: $*" >&2; exit 1; }

[[ $EUID -eq 0 ]] || die "needs root (BPF, namespaces, bpf_stats_enabled)"
for tool in gcc node bpftool jq ip taskset; do command -v "$tool" >/dev/null || die "$tool is not installed"; done
[[ -f dist/src/index.js ]] || die "nettrace is not built: run npm run build"
(($(nproc) >= 2)) || die "needs two CPUs"
mkdir -p "$BUILD" "$RESULTS"
gcc -O2 -Wall -Wextra -o "$BUILD/bulk" bench/bulk.c

TMP=$(mktemp -d /tmp/nettrace-steering-bench.XXXXXX)
STATS_WAS=$(sysctl -n kernel.bpf_stats_enabled)
cleanup() {
	local status=$?
	trap - EXIT INT TERM
	# only this script's own background jobs that still run: TERM, a grace second, then KILL
	local jobs
	jobs=$(jobs -p)
	[[ -z $jobs ]] || { kill -TERM $jobs 2>/dev/null; sleep 1; kill -KILL $(jobs -p) 2>/dev/null; } || true
	wait 2>/dev/null || true
	ip netns del "$NS_S" 2>/dev/null || true
	ip netns del "$NS_R" 2>/dev/null || true
	sysctl -qw kernel.bpf_stats_enabled="$STATS_WAS"
	rm -rf "$TMP"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$NS_S"
ip netns add "$NS_R"
ip link add "$IF_S" netns "$NS_S" type veth peer name "$IF_R" netns "$NS_R"
ip -n "$NS_S" addr add $ADDR_S/24 dev "$IF_S"
ip -n "$NS_R" addr add $ADDR_R/24 dev "$IF_R"
ip -n "$NS_S" link set "$IF_S" up gso_max_size "$GSO_MAX_SIZE"
ip -n "$NS_R" link set "$IF_R" up
ip netns exec "$NS_R" sh -c "echo $RPS_CPUS > /sys/class/net/$IF_R/queues/rx-0/rps_cpus"
# A global switch: another benchmark that turns it off meanwhile leaves rounds without BPF times (shown as –).
sysctl -qw kernel.bpf_stats_enabled=1

rx_packets() { ip netns exec "$NS_R" cat /sys/class/net/"$IF_R"/statistics/rx_packets; }

# ids of the BPF programs a process holds open
prog_ids() { grep -h '^prog_id:' /proc/"$1"/fdinfo/* 2>/dev/null | awk '{print $2}' | sort -un; }

# [{id, name, run_cnt, run_time_ns}] of every program a process holds open, asked by id: a full
# listing fails now and then while other tools load and unload programs
progs_of() {
	local id
	for id in $(prog_ids "$1"); do bpftool -j prog show id "$id"; done |
		jq -sc 'map({id, name, run_cnt: (.run_cnt // 0), run_time_ns: (.run_time_ns // 0)})'
}

# one round of one variant: appends a JSON line to $TMP/runs.jsonl
run() {
	local variant=$1 round=$2 pid="" progs0="[]" progs1="[]" rx0 rx1 sink src tracer="null"
	case $variant in
	untraced) ;;
	nettrace | steering)
		node bench/steering-consumer.js "$variant" >"$TMP/tracer.out" 2>"$TMP/tracer.err" & pid=$!
		# loading takes seconds on a busy machine (the verifier, and a retry without fexit that
		# closes the first attempt's programs), so wait for the tracer to say it is attached
		for _ in $(seq 600); do grep -q ready "$TMP/tracer.out" && break; sleep 0.1; done
		grep -q ready "$TMP/tracer.out" || { cat "$TMP/tracer.err" >&2; ps -o pid,stat,etime,args -p "$pid" >&2 || true; die "$variant did not attach in a minute"; }
		sleep 1 ;;
	*) die "unknown variant $variant" ;;
	esac
	ip netns exec "$NS_R" taskset -c 0 "$BUILD/bulk" sink $PORT >"$TMP/sink.out" & sink=$!
	for _ in $(seq 100); do [[ -s $TMP/sink.out ]] && break; sleep 0.05; done
	[[ -n $pid ]] && progs0=$(progs_of "$pid")
	rx0=$(rx_packets)
	src=$(ip netns exec "$NS_S" taskset -c 1 "$BUILD/bulk" source $ADDR_R $PORT "$SECS")
	wait "$sink"
	rx1=$(rx_packets)
	if [[ -n $pid ]]; then
		progs1=$(progs_of "$pid")
		kill -TERM "$pid"
		wait "$pid" || true
		tracer=$(tail -n1 "$TMP/tracer.out")
	fi
	jq -nc --arg variant "$variant" --argjson round "$round" --argjson source "$src" \
		--argjson packets $((rx1 - rx0)) --argjson p0 "$progs0" --argjson p1 "$progs1" --argjson tracer "$tracer" \
		'def cost(f): [$p1[] | select(f) | . as $b | ($p0[] | select(.id == $b.id)) as $a
			| {runs: ($b.run_cnt - $a.run_cnt), ns: ($b.run_time_ns - $a.run_time_ns)}]
			| {runs: (map(.runs) | add // 0), ns: (map(.ns) | add // 0)};
		 {variant: $variant, round: $round, gbps: $source.gbps, bytes: $source.bytes, seconds: $source.seconds,
		  packets: $packets, pps: ($packets / $source.seconds),
		  steering_bpf: cost(.name | startswith("steer_")), other_bpf: cost(.name | startswith("steer_") | not),
		  tracer: $tracer}' >>"$TMP/runs.jsonl"
	echo "  $variant: $(jq -r .gbps <<<"$src") Gbit/s, $((rx1 - rx0)) packets" >&2
}

echo "bench: $ROUNDS rounds x ${SECS}s, gso_max_size $GSO_MAX_SIZE, rps_cpus $RPS_CPUS, variants: $VARIANTS" >&2
: >"$TMP/runs.jsonl"
for round in $(seq 1 "$ROUNDS"); do
	echo "round $round/$ROUNDS" >&2
	for variant in $VARIANTS; do run "$variant" "$round"; done
done
jq -nc --arg date "$(date -u +%FT%TZ)" --arg kernel "$(uname -r)" --argjson cpus "$(nproc)" --argjson rounds "$ROUNDS" \
	--argjson seconds "$SECS"  --argjson gso_max_size "$GSO_MAX_SIZE" --arg rps_cpus "$RPS_CPUS" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" --arg commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" --arg node "$(node --version)" \
	'{date: $date, kernel: $kernel, cpus: $cpus, rounds: $rounds, seconds_per_round: $seconds, gso_max_size: $gso_max_size, rps_cpus: $rps_cpus,
	  loadavg_at_end: $load, commit: $commit, node: $node}' >"$TMP/meta.json"
node bench/steering-report.js "$TMP/meta.json" "$TMP/runs.jsonl" "$RESULTS/steering-rps$RPS_CPUS.json"
