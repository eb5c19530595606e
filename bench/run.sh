#!/usr/bin/env bash
# Loopback TCP churn, untraced and under each tracer as its users run it, in alternating rounds:
#   untraced    bench/build/churn alone
#   states      nettrace states -i 1 > /dev/null (transitions counted in the kernel)
#   top         nettrace top -i 1 > /dev/null (report mode: stdout is not a terminal)
#   serve       nettrace serve, with /metrics fetched every 250 ms (latency p50/p99 recorded)
#   close-json  nettrace --events close --json > /dev/null (tcplife's job)
#   json        nettrace --json > /dev/null (every record)
#   consumer    nettrace's BPF object, every record, drained by plain C libbpf (bench/consumer.c)
#   bpftrace    @[args->newstate] = count() on sock:inet_sock_set_state (in-kernel counting)
#   tcpstates   Debian's libbpf-tools tcpstates > /dev/null
#   tcplife     Debian's libbpf-tools tcplife > /dev/null
# Each round runs every variant once, so slow drift hits all of them alike and
# each traced rate is compared with its own round's untraced rate.
#
#   sudo bash bench/run.sh            (or: npm run bench)
# Environment:
#   ROUNDS=5 SECONDS_PER_ROUND=5      rounds, and seconds of churn per variant
#   CHURN_ARGS="-t 32 -a 8"           passed to churn (see bench/churn.c)
#   VARIANTS="untraced states ..."    a subset, in that order
# Prints a table of medians and writes every measurement to
# bench/results/latest.json.
set -euo pipefail

cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
SECS=${SECONDS_PER_ROUND:-5} # not SECONDS: bash keeps its own clock in that name
CHURN_ARGS=${CHURN_ARGS:--t 32 -a 8}
VARIANTS=${VARIANTS:-untraced states top serve close-json json consumer bpftrace tcpstates tcplife}
BUILD=bench/build
RESULTS=bench/results
HZ=$(getconf CLK_TCK)

die() { echo "bench: $*" >&2; exit 1; }

[[ $EUID -eq 0 ]] || die "needs root (BPF, bpf_stats_enabled)"
for tool in gcc node bpftool bpftrace jq curl /usr/sbin/tcplife /usr/sbin/tcpstates; do
	command -v "$tool" >/dev/null || die "$tool is not installed (apt-get install bpftrace libbpf-tools jq curl)"
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

# The drops map of a nettrace process, summed over CPUs (key 0: every kind): the kernel's own count.
nettrace_drops() {
	local ids id
	ids=$(grep -h '^map_id:' /proc/"$1"/fdinfo/* 2>/dev/null | awk '{print $2}' | sort -un | paste -sd, -)
	[[ -n $ids ]] || { echo 0; return; }
	id=$(bpftool -j map show | jq -r --argjson ids "[$ids]" \
		'[.[] | select(.name == "drops" and (.id as $i | $ids | index($i)))][0].id // empty')
	[[ -n $id ]] || { echo 0; return; }
	# per-CPU values come as little-endian byte arrays ("0x2a", ...)
	bpftool -j map lookup id "$id" key 0 0 0 0 |
		jq '[.values[].value | to_entries | map((.value | ltrimstr("0x") | explode |
			map(if . >= 97 then . - 87 elif . >= 65 then . - 55 else . - 48 end) | .[0] * 16 + .[1]) * pow(256; .key)) | add] | add'
}

# GET /metrics every 250 ms until stopped; prints every latency in ms, one a line.
scrape_loop() {
	while :; do
		curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$1/metrics" | awk '{print $1 * 1000}'
		sleep 0.25
	done
}

NETTRACE="node bin/nettrace.js"
SERVE_PORT=19559

# Runs one traced round; appends one JSON line to $TMP/runs.jsonl.
traced() {
	local variant=$1 round=$2 pid grep_pid="" scrape_pid="" ids out churn c0 c1 g0=0 g1=0
	local cnt0 ns0 miss0 cnt1 ns1 miss1 final received lost result drops records scrape
	out=$TMP/$variant.$round
	case $variant in
	states) $NETTRACE states -i 1 >/dev/null 2>"$out.err" & pid=$! ;;
	top) $NETTRACE top -i 1 >/dev/null 2>"$out.err" & pid=$! ;;
	serve) $NETTRACE serve --listen 127.0.0.1:$SERVE_PORT >/dev/null 2>"$out.err" & pid=$! ;;
	close-json) $NETTRACE --events close --json >/dev/null 2>"$out.err" & pid=$! ;;
	json) $NETTRACE --json >/dev/null 2>"$out.err" & pid=$! ;;
	consumer) "$BUILD/consumer" bpf/nettrace.bpf.o >"$out.out" 2>"$out.err" & pid=$! ;;
	bpftrace) bpftrace -e 'tracepoint:sock:inet_sock_set_state { @[args->newstate] = count(); }' >"$out.out" 2>"$out.err" & pid=$! ;;
	tcpstates | tcplife) "/usr/sbin/$variant" >/dev/null 2>"$out.err" & pid=$! ;;
	*) die "unknown variant $variant (see VARIANTS)" ;;
	esac
	STARTED+=("$pid")
	ids=$(wait_attached "$pid") || { cat "$out.err" >&2; die "$variant did not attach"; }
	OUR_PROGS+=(${ids//,/ })
	sleep 0.5
	if [[ $variant == serve ]]; then
		scrape_loop "$SERVE_PORT" >"$out.scrape" & scrape_pid=$!
		STARTED+=("$scrape_pid")
	fi

	read -r cnt0 ns0 miss0 < <(prog_stats "$ids")
	c0=$(cpu_ticks "$pid")
	churn_window "$pid" $scrape_pid
	churn=$CHURN
	read -r cnt1 ns1 miss1 < <(prog_stats "$ids")
	c1=$(cpu_ticks "$pid")
	[[ -n $scrape_pid ]] && stop_pid "$scrape_pid"

	sleep 0.5 # let the last records reach the reader
	read -r final _ < <(prog_stats "$ids")
	case $variant in
	consumer | bpftrace | tcpstates | tcplife) drops=0 ;;
	*) drops=$(nettrace_drops "$pid") ;;
	esac
	stop_pid "$pid"

	records=null
	case $variant in
	consumer)
		result=$(tail -n1 "$out.out")
		[[ -n $result ]] || { cat "$out.err" >&2; die "$variant printed no result"; }
		drops=$(jq .drops <<<"$result"); records=$(jq .records <<<"$result") ;;
	tcpstates | tcplife)
		# libbpf-tools report what their perf buffers lost on stderr: "lost N events on CPU #C"
		drops=$(grep -io 'lost [0-9]* events' "$out.err" | awk '{n += $2} END {print n + 0}') ;;
	close-json | json)
		records=$(grep -o '"records":[0-9]*' "$out.err" | tail -n1 | cut -d: -f2)
		[[ -n $records ]] || records=null ;;
	esac
	scrape=null
	if [[ -f $out.scrape ]]; then
		scrape=$(sort -n "$out.scrape" | jq -sc '{n: length, p50: (if length > 0 then .[(length * 0.5 | floor)] else null end),
			p99: (if length > 0 then .[((length - 1) * 0.99 | floor)] else null end), max: max}')
	fi
	result=$(jq -nc --argjson d "${drops:-0}" --argjson r "$records" --argjson s "$scrape" '{drops: $d, records: $r, scrape_ms: $s}')

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
