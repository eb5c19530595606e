#!/usr/bin/env bash
# Loopback TCP churn, untraced and under four tracers, in alternating rounds:
#   untraced   bench/build/churn alone
#   aggregate  nettrace, every record into the flow table (bench/nettrace-consumer.js aggregate)
#   stream     nettrace, an event object and a JSON line per record (... stream)
#   consumer   nettrace's BPF object drained by plain C libbpf (bench/consumer.c)
#   bpftrace   one printf per state transition (bench/churn.bt)
# Each round runs every variant once, so slow drift hits all of them alike and
# each traced rate is compared with its own round's untraced rate.
#
#   sudo bash bench/run.sh            (or: npm run bench)
# Environment:
#   ROUNDS=5 SECONDS_PER_ROUND=5      rounds, and seconds of churn per variant
#   CHURN_ARGS="-t 32 -a 8"           passed to churn (see bench/churn.c)
#   VARIANTS="untraced aggregate stream consumer bpftrace"
# Prints a table of medians and writes every measurement to
# bench/results/latest.json.
set -euo pipefail

cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
SECS=${SECONDS_PER_ROUND:-5} # not SECONDS: bash keeps its own clock in that name
CHURN_ARGS=${CHURN_ARGS:--t 32 -a 8}
VARIANTS=${VARIANTS:-untraced aggregate stream consumer bpftrace}
BUILD=bench/build
RESULTS=bench/results
HZ=$(getconf CLK_TCK)

die() { echo "bench: $*" >&2; exit 1; }

[[ $EUID -eq 0 ]] || die "needs root (BPF, bpf_stats_enabled)"
for tool in gcc node bpftool bpftrace jq; do
	command -v "$tool" >/dev/null || die "$tool is not installed"
done
[[ -f dist/src/index.js ]] || die "nettrace is not built: run npm run build"
# bpftrace and the syscall tracepoints find their ids in tracefs
[[ -d /sys/kernel/tracing/events ]] || mount -t tracefs nodev /sys/kernel/tracing

mkdir -p "$BUILD" "$RESULTS"
gcc -O2 -Wall -Wextra -pthread -o "$BUILD/churn" bench/churn.c
gcc -O2 -Wall -Wextra -o "$BUILD/consumer" bench/consumer.c -lbpf -lelf -lz

TMP=$(mktemp -d /tmp/nettrace-bench.XXXXXX)
STARTED=()   # every pid this script started, so cleanup kills those and nothing else
OUR_PROGS=() # ids of every BPF program our tracers loaded
STATS_WAS=$(sysctl -n kernel.bpf_stats_enabled)

cleanup() {
	local status=$? pid left
	trap - EXIT INT TERM
	for pid in "${STARTED[@]}"; do
		kill -0 "$pid" 2>/dev/null || continue
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	sysctl -qw kernel.bpf_stats_enabled="$STATS_WAS"
	rm -rf "$TMP"
	# the kernel frees programs shortly after their last fd closes
	for _ in $(seq 30); do
		left=$(still_loaded "${OUR_PROGS[@]}")
		[[ -z $left ]] && break
		sleep 0.1
	done
	if [[ -n $left ]]; then
		echo "bench: BPF programs still loaded: $left" >&2
		status=1
	else
		echo "bench: no BPF programs of ours left loaded (bpftool prog show)" >&2
	fi
	exit "$status"
}

# ids among "$@" that bpftool still lists
still_loaded() {
	bpftool -j prog show | jq -r --argjson ids "[$(IFS=,; echo "$*")]" \
		'[.[].id | select(. as $i | $ids | index($i))] | join(" ")'
}

trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'echo "bench: failed at line $LINENO: $BASH_COMMAND" >&2' ERR

# Other tracers on the same hooks would slow every variant alike and hide the
# difference between them: say so, and record it.
FOREIGN=$(bpftool -j prog show | jq -c '[.[] | {id, name, type}]')
if [[ $FOREIGN != "[]" ]]; then
	echo "bench: warning: BPF programs already loaded, every variant (untraced too) pays for them: $FOREIGN" >&2
fi

sysctl -qw kernel.bpf_stats_enabled=1
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg) # other work on the machine, recorded with the results

# BPF program ids a process holds open (fdinfo names them), comma separated
progs_of() {
	grep -h '^prog_id:' /proc/"$1"/fdinfo/* 2>/dev/null | awk '{print $2}' | sort -un | paste -sd, -
}

# "run_cnt run_time_ns recursion_misses", summed over the given comma-separated ids
prog_stats() {
	bpftool -j prog show | jq -r --argjson ids "[$1]" \
		'[.[] | select(.id as $i | $ids | index($i))]
		 | "\(map(.run_cnt // 0) | add // 0) \(map(.run_time_ns // 0) | add // 0) \(map(.recursion_misses // 0) | add // 0)"'
}

# user+system clock ticks of a process, all threads (fields 14 and 15 of stat)
cpu_ticks() {
	local stat
	stat=$(cat /proc/"$1"/stat 2>/dev/null) || { echo 0; return; }
	stat=${stat##*) } # comm may hold spaces; everything after ") " is fixed fields
	awk '{print $12 + $13}' <<<"$stat"
}

# one TCP state change: a connect to a closed loopback port (SYN, RST)
poke() { (exec 3<>/dev/tcp/127.0.0.1/1) 2>/dev/null || true; }

# Waits until the tracer with this pid has its programs loaded and they fire.
# Prints their ids.
wait_attached() {
	local pid=$1 ids="" cnt
	for _ in $(seq 300); do
		kill -0 "$pid" 2>/dev/null || return 1
		ids=$(progs_of "$pid")
		if [[ -n $ids ]]; then
			poke
			read -r cnt _ < <(prog_stats "$ids")
			if ((cnt > 0)); then echo "$ids"; return 0; fi
		fi
		sleep 0.1
	done
	return 1
}

stop_pid() {
	local pid=$1
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# CPU ticks of user-space processes other than the given pids (and this
# script): on a shared machine, someone else's build competes with the churn.
# Exited children are included through their parents' cutime/cstime.
# Kernel threads are left out: ksoftirqd and kworkers do the churn's own work.
other_ticks() {
	# processes come and go while cat reads: a vanished one is not an error
	{ cat /proc/[0-9]*/stat 2>/dev/null || true; } | sed 's/^\([0-9]*\) .*) /\1 /' |
		awk -v ours=" $$ $* " '$1 != 2 && $3 != 2 && !index(ours, " " $1 " ") {s += $13 + $14 + $15 + $16}
			END {print s + 0}'
}

# ticks the hypervisor gave to others while we wanted the CPU (steal, all CPUs)
steal_ticks() { awk '$1 == "cpu" {print $9}' /proc/stat; }

# Runs churn once; sets CHURN (its JSON) and CONTEXT (what else ran meanwhile).
# Arguments: the pids of our own tracer processes.
churn_window() {
	local o0 o1 s0 s1 f0=0 f1=0 foreign
	# any BPF program that is not one of ours runs on someone else's behalf
	foreign=$(bpftool -j prog show | jq -r --argjson ours "[$(IFS=,; echo "${OUR_PROGS[*]}")]" \
		'[.[].id | select(. as $i | $ours | index($i) | not)] | join(",")')
	o0=$(other_ticks "$@"); s0=$(steal_ticks)
	[[ -n $foreign ]] && read -r _ f0 _ < <(prog_stats "$foreign")
	CHURN=$("$BUILD/churn" -d "$SECS" $CHURN_ARGS)
	o1=$(other_ticks "$@"); s1=$(steal_ticks)
	[[ -n $foreign ]] && read -r _ f1 _ < <(prog_stats "$foreign")
	CONTEXT=$(jq -nc --argjson others $(((o1 - o0) * 1000 / HZ)) --argjson steal $(((s1 - s0) * 1000 / HZ)) \
		--arg foreign "$foreign" --argjson fns $((f1 > f0 ? f1 - f0 : 0)) \
		'{others_cpu_ms: $others, steal_ms: $steal,
		  foreign_bpf_progs: ($foreign | split(",") | map(tonumber)), foreign_bpf_run_time_ns: $fns}')
}

# Runs one traced round; appends one JSON line to $TMP/runs.jsonl.
traced() {
	local variant=$1 round=$2 pid grep_pid="" ids out churn c0 c1 g0=0 g1=0
	local cnt0 ns0 miss0 cnt1 ns1 miss1 final received lost result
	out=$TMP/$variant.$round
	case $variant in
	aggregate | stream) node bench/nettrace-consumer.js "$variant" >"$out.out" 2>"$out.err" & pid=$! ;;
	consumer) "$BUILD/consumer" bpf/nettrace.bpf.o >"$out.out" 2>"$out.err" & pid=$! ;;
	bpftrace)
		# grep counts the lines as they come, instead of /dev/null, so drops show
		mkfifo "$out.fifo"
		grep -c '^E ' <"$out.fifo" >"$out.out" & grep_pid=$!
		STARTED+=("$grep_pid")
		bpftrace bench/churn.bt >"$out.fifo" 2>"$out.err" & pid=$! ;;
	*) die "unknown variant $variant (untraced, aggregate, stream, consumer, bpftrace)" ;;
	esac
	STARTED+=("$pid")
	ids=$(wait_attached "$pid") || { cat "$out.err" >&2; die "$variant did not attach"; }
	OUR_PROGS+=(${ids//,/ })
	sleep 0.5

	read -r cnt0 ns0 miss0 < <(prog_stats "$ids")
	c0=$(cpu_ticks "$pid")
	[[ -n $grep_pid ]] && g0=$(cpu_ticks "$grep_pid")
	churn_window "$pid" $grep_pid
	churn=$CHURN
	read -r cnt1 ns1 miss1 < <(prog_stats "$ids")
	c1=$(cpu_ticks "$pid")
	[[ -n $grep_pid ]] && g1=$(cpu_ticks "$grep_pid")

	sleep 0.5 # let the last records reach the reader
	read -r final _ < <(prog_stats "$ids")
	stop_pid "$pid"
	[[ -n $grep_pid ]] && wait "$grep_pid" 2>/dev/null || true

	if [[ $variant == bpftrace ]]; then
		# bpftrace's lost-event notices go to its output too; counting its lines
		# against how often its program ran gives the loss exactly
		received=$(cat "$out.out")
		lost=$((final - received > 0 ? final - received : 0))
		result=$(jq -nc --argjson r "$received" --argjson d "$lost" '{records: $r, drops: $d}')
	else
		result=$(tail -n1 "$out.out")
		[[ -n $result ]] || { cat "$out.err" >&2; die "$variant printed no result"; }
	fi

	jq -nc --arg variant "$variant" --argjson round "$round" --argjson churn "$churn" \
		--argjson result "$result" --arg ids "$ids" --argjson context "$CONTEXT" \
		--argjson run_cnt $((cnt1 - cnt0)) --argjson run_ns $((ns1 - ns0)) \
		--argjson missed $((miss1 - miss0)) --argjson run_cnt_total "$final" \
		--argjson cpu_ms $(((c1 - c0 + g1 - g0) * 1000 / HZ)) \
		'{variant: $variant, round: $round, churn: $churn, tracer: $result,
		  prog_ids: ($ids | split(",") | map(tonumber)),
		  bpf: {run_cnt: $run_cnt, run_time_ns: $run_ns, recursion_misses: $missed,
		        run_cnt_lifetime: $run_cnt_total},
		  consumer_cpu_ms: $cpu_ms, context: $context}' >>"$TMP/runs.jsonl"
	echo "  $variant: $(jq -r .rate <<<"$churn") conns/s, $(jq -c . <<<"$result")" >&2
}

echo "bench: $ROUNDS rounds x ${SECS}s, churn $CHURN_ARGS, variants: $VARIANTS" >&2
: >"$TMP/runs.jsonl"
for round in $(seq 1 "$ROUNDS"); do
	echo "round $round/$ROUNDS" >&2
	for variant in $VARIANTS; do
		if [[ $variant == untraced ]]; then
			churn_window
			jq -nc --argjson round "$round" --argjson churn "$CHURN" --argjson context "$CONTEXT" \
				'{variant: "untraced", round: $round, churn: $churn, context: $context}' >>"$TMP/runs.jsonl"
			echo "  untraced: $(jq -r .rate <<<"$CHURN") conns/s" >&2
		else
			traced "$variant" "$round"
		fi
	done
done

jq -nc --arg date "$(date -u +%FT%TZ)" --arg kernel "$(uname -r)" --argjson cpus "$(nproc)" \
	--arg churn_args "$CHURN_ARGS" --argjson rounds "$ROUNDS" --argjson seconds "$SECS" \
	--arg commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
	--arg node "$(node --version)" --arg bpftrace "$(bpftrace --version)" \
	--argjson foreign "$FOREIGN" --arg loadavg "$LOADAVG" \
	'{date: $date, kernel: $kernel, cpus: $cpus, churn_args: $churn_args, rounds: $rounds,
	  seconds_per_round: $seconds, commit: $commit, node: $node, bpftrace: $bpftrace,
	  loadavg_at_start: $loadavg, bpf_stats_enabled: true, foreign_bpf_progs_at_start: $foreign}' >"$TMP/meta.json"
node bench/report.js "$TMP/meta.json" "$TMP/runs.jsonl" "$RESULTS/latest.json"
