#!/usr/bin/env bash
# A loopback UDP flood (bench/udp-flood.c: one sending thread, one receiving
# thread, small datagrams), untraced and under nettrace with every hook on, in
# alternating rounds, for unconnected (sendto/recvfrom) and connected sockets.
# Under nettrace it also checks that the close totals nettrace reports for the
# flood's two sockets equal what the flood itself counted, byte for byte.
#
#   sudo bash bench/udp.sh
# Environment: ROUNDS=5 SECONDS_PER_ROUND=4 PAYLOAD=16 MODES="unconnected connected"
# Prints a table of medians and writes every measurement to bench/results/udp-latest.json.
set -euo pipefail

cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
SECS=${SECONDS_PER_ROUND:-4}
PAYLOAD=${PAYLOAD:-16}
MODES=${MODES:-unconnected connected}
BUILD=bench/build
RESULTS=bench/results

die() { echo "bench: $*" >&2; exit 1; }

[[ $EUID -eq 0 ]] || die "needs root (BPF)"
for tool in gcc node jq; do command -v "$tool" >/dev/null || die "$tool is not installed"; done
[[ -f dist/src/index.js ]] || die "nettrace is not built: run npm run build"
mkdir -p "$BUILD" "$RESULTS"
gcc -O2 -Wall -Wextra -pthread -o "$BUILD/udp-flood" bench/udp-flood.c

TMP=$(mktemp -d /tmp/nettrace-udp-bench.XXXXXX)
CONSUMER=""
cleanup() {
	[[ -n $CONSUMER ]] && kill -TERM "$CONSUMER" 2>/dev/null && wait "$CONSUMER" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

flood() { "$BUILD/udp-flood" -s "$SECS" -p "$PAYLOAD" $([[ $1 == connected ]] && echo -c); }

# One run under nettrace: start the consumer, wait until attached, flood, stop it.
traced() {
	local mode=$1 out=$TMP/consumer flood_json result
	node bench/udp-consumer.js >"$out.out" 2>"$out.err" &
	CONSUMER=$!
	for _ in $(seq 900); do grep -q "^ready" "$out.err" 2>/dev/null && break; sleep 0.1; done
	grep -q '^ready' "$out.err" || { cat "$out.err" >&2; die "nettrace did not start"; }
	flood_json=$(flood "$mode")
	sleep 0.2 # the close records reach the consumer within its 10 ms flush
	kill -TERM "$CONSUMER"
	wait "$CONSUMER" || true
	CONSUMER=""
	result=$(tail -n1 "$out.out")
	[[ -n $result ]] || { cat "$out.err" >&2; die "the consumer printed no result"; }
	jq -nc --argjson f "$flood_json" --argjson r "$result" '
		($r.sockets | map(select(.sport == $f.sport)) | .[0]) as $tx
		| ($r.sockets | map(select(.sport == $f.dport)) | .[0]) as $rx
		| {flood: $f, nettrace: {records: $r.records, drops: $r.drops, cpu_ms: $r.cpu_ms, tx: $tx, rx: $rx},
		   exact: ($tx != null and $rx != null
		           and $tx.tx_datagrams == $f.sent and $tx.tx_bytes == $f.sent_bytes
		           and $rx.rx_datagrams == $f.received and $rx.rx_bytes == $f.received_bytes
		           and $rx.drops == $f.drops)}'
}

echo "bench: $ROUNDS rounds x ${SECS}s, ${PAYLOAD}-byte datagrams, modes: $MODES" >&2
: >"$TMP/runs.jsonl"
for round in $(seq 1 "$ROUNDS"); do
	for mode in $MODES; do
		u=$(flood "$mode")
		jq -nc --arg mode "$mode" --argjson round "$round" --argjson f "$u" \
			'{mode: $mode, round: $round, variant: "untraced", flood: $f}' >>"$TMP/runs.jsonl"
		t=$(traced "$mode")
		jq -nc --arg mode "$mode" --argjson round "$round" --argjson t "$t" \
			'{mode: $mode, round: $round, variant: "nettrace"} + $t' >>"$TMP/runs.jsonl"
		echo "round $round $mode: untraced $(jq -r '.sent / .seconds | floor' <<<"$u")/s," \
			"nettrace $(jq -r '.flood.sent / .flood.seconds | floor' <<<"$t")/s, exact $(jq -r .exact <<<"$t")" >&2
	done
done

jq -s --arg date "$(date -u +%FT%TZ)" --arg kernel "$(uname -r)" --argjson cpus "$(nproc)" \
	--argjson payload "$PAYLOAD" --argjson seconds "$SECS" \
	--arg commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
	'{date: $date, kernel: $kernel, cpus: $cpus, payload: $payload, seconds_per_round: $seconds, commit: $commit, runs: .}' \
	"$TMP/runs.jsonl" >"$RESULTS/udp-latest.json"

# medians per mode: sent/s untraced and traced, the per-round ratio, received/s, drops, exactness
jq -r '
	def median: sort | if length == 0 then null else .[(length - 1) / 2 | floor] end;
	def rate: .flood.sent / .flood.seconds;
	def per_cpu_s: .flood.sent / .flood.cpu_ms * 1000;
	def r2: . * 100 | round / 100;
	.runs | group_by(.mode)[] | . as $runs | $runs[0].mode as $mode
	| ($runs | map(select(.variant == "untraced"))) as $u
	| ($runs | map(select(.variant == "nettrace"))) as $t
	| [range(0; $u | length) | ($t[.] | rate) / ($u[.] | rate)] as $ratios
	| [range(0; $u | length) | ($t[.] | per_cpu_s) / ($u[.] | per_cpu_s)] as $cpu_ratios
	| "\($mode): untraced \($u | map(rate) | median | floor) dgrams/s, nettrace \($t | map(rate) | median | floor) dgrams/s, "
	  + "ratio \($ratios | median | r2) [\($ratios | min | r2)-\($ratios | max | r2)], "
	  + "per CPU second untraced \($u | map(per_cpu_s) | median | floor), nettrace \($t | map(per_cpu_s) | median | floor), "
	  + "ratio \($cpu_ratios | median | r2) [\($cpu_ratios | min | r2)-\($cpu_ratios | max | r2)], "
	  + "receiver drops untraced \($u | map(.flood.drops) | median) / nettrace \($t | map(.flood.drops) | median), "
	  + "ring drops \($t | map(.nettrace.drops) | add), exact totals in \($t | map(select(.exact)) | length)/\($t | length) runs"
' "$RESULTS/udp-latest.json"
