#!/usr/bin/env bash
# Instructions per message of a client's W6 run (QoS 0 publishes into the
# sink), measured with callgrind.
#
#   bench/rust/callgrind.sh <client> <count> [<small-count>] [-- <extra bench args>]
#
# <client> names a binary bench-<client> in bench/rust/target/release (build
# it first: cargo build --release). Runs the client twice under
# `valgrind --tool=callgrind` against a private bench-sink: with <count>
# messages and with <small-count> (default count/10). Connection setup and
# process start cost the same in both, so
#   ir_per_msg = (Ir(count) - Ir(small)) / (count - small)
# counts only the per-message work (all of the client's threads; the sink
# runs natively in its own process and is not counted).
#
# Prints one JSON line on stdout:
#   {"client": ..., "workload": "W6", "metric": "callgrind", "count": N,
#    "small_count": n, "ir_per_msg": f, "ir_total": X, "ir_total_small": Y,
#    "extra_args": "..."}
# and a readable summary on stderr. Exit status 0, or 1 if a run failed.
set -euo pipefail

usage() { echo "usage: $0 <client> <count> [<small-count>] [-- <extra bench args>]" >&2; exit 2; }
[ $# -ge 2 ] || usage
client=$1; count=$2; shift 2
small=$(( count / 10 > 0 ? count / 10 : 1 ))
if [ $# -gt 0 ] && [ "$1" != "--" ]; then small=$1; shift; fi
if [ $# -gt 0 ] && [ "$1" = "--" ]; then shift; fi
extra=("$@")
[ "$small" -lt "$count" ] || { echo "small-count must be below count" >&2; exit 2; }

here=$(cd "$(dirname "$0")" && pwd)
bin="$here/target/release"
[ -x "$bin/bench-$client" ] || { echo "$bin/bench-$client not found: cargo build --release in $here" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "valgrind not installed" >&2; exit 2; }

work=$(mktemp -d)
"$bin/bench-sink" --port 0 >"$work/sink.out" 2>"$work/sink.err" &
sink=$!
trap 'kill "$sink" 2>/dev/null || true; rm -rf "$work"' EXIT
port=""
for _ in $(seq 1 100); do
    port=$(sed -n 's/^PORT=//p' "$work/sink.out")
    [ -n "$port" ] && break
    sleep 0.05
done
[ -n "$port" ] || { echo "bench-sink did not start" >&2; exit 1; }

# Ir of one run with $1 messages.
instructions() {
    local n=$1 out="$work/callgrind.$1"
    if ! valgrind --tool=callgrind --callgrind-out-file="$out" -q \
        "$bin/bench-$client" --workload W6 --host 127.0.0.1 --port "$port" \
        --count "$n" --timeout 3600 "${extra[@]}" >"$work/json.$n" 2>"$work/err.$n"; then
        echo "run with $n messages failed:" >&2
        cat "$work/json.$n" "$work/err.$n" >&2
        exit 1
    fi
    # "summary: <Ir>" (callgrind's default event is Ir); older files say "totals:".
    awk '/^summary:/ {print $2; found=1; exit} /^totals:/ {t=$2} END {if (!found && t) print t}' "$out"
}

ir_small=$(instructions "$small")
ir_total=$(instructions "$count")
per_msg=$(awk -v a="$ir_total" -v b="$ir_small" -v n="$count" -v m="$small" \
    'BEGIN {printf "%.1f", (a - b) / (n - m)}')
echo "$client: $per_msg instructions/message (Ir $ir_total for $count, $ir_small for $small)" >&2
printf '{"client": "%s", "workload": "W6", "metric": "callgrind", "count": %s, "small_count": %s, "ir_per_msg": %s, "ir_total": %s, "ir_total_small": %s, "extra_args": "%s"}\n' \
    "$client" "$count" "$small" "$per_msg" "$ir_total" "$ir_small" "${extra[*]:-}"
