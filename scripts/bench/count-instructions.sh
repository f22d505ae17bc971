#!/usr/bin/env bash
# Instructions an HTTP server executes per request, counted by valgrind's callgrind. A diagnostic, not
# part of `npm run bench`: unlike req/s or CPU time on a shared and noisy machine, the count barely
# moves between runs, so differences of a few per cent show (BENCHMARKS.md uses it for the back-end).
#
#   scripts/bench/count-instructions.sh PORT COMMAND...
#   e.g.  cd back-end && PORT=5252 ../scripts/bench/count-instructions.sh 5252 node dist/server.js
#
# COMMAND must start a server on 127.0.0.1:PORT that exits on SIGTERM. It is run twice, answering N1 and
# then N2 sequential GET requests for REQUEST_PATH on one keep-alive connection; start-up, JIT warm-up and
# shut-down cancel out of (instructions(N2) - instructions(N1)) / (N2 - N1), the figure printed.
# Knobs: N1 (default 20000), N2 (60000), REQUEST_PATH (/api/hello). Needs valgrind (apt-get install valgrind).
set -euo pipefail

port=${1:?usage: count-instructions.sh PORT COMMAND...}
shift
[[ $# -gt 0 ]] || { echo "usage: count-instructions.sh PORT COMMAND..." >&2; exit 2; }
command -v valgrind > /dev/null || { echo "count-instructions: valgrind not found (apt-get install valgrind)" >&2; exit 1; }
n1=${N1:-20000}
n2=${N2:-60000}
client="$(dirname "$0")/sequential-client.mjs"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Instructions for one start, N answered requests and a stop.
count() {
  local n=$1
  shift
  # V8 writes machine code at run time: valgrind must look for code that changes, not only on the stack.
  valgrind --tool=callgrind --smc-check=all-non-file --callgrind-out-file="$work/out.%p" \
    --log-file="$work/valgrind.$n.log" "$@" > "$work/server.$n.log" 2>&1 &
  local server=$!
  # Node starts in some 10-20 s under valgrind; give up after two minutes or when the server has exited.
  for _ in $(seq 240); do
    (echo > "/dev/tcp/127.0.0.1/$port") 2> /dev/null && break
    kill -0 "$server" 2> /dev/null || break
    sleep 0.5
  done
  local answered=yes
  node "$client" "$port" "$n" "${REQUEST_PATH:-/api/hello}" || answered=no
  kill -TERM "$server" 2> /dev/null || true
  wait "$server" || true
  if [[ $answered == no ]]; then
    echo "count-instructions: the server did not answer all $n requests; its output:" >&2
    cat "$work/server.$n.log" >&2
    return 1
  fi
  awk '/Collected/ { print $4 }' "$work/valgrind.$n.log"
}

first=$(count "$n1" "$@") || exit 1
second=$(count "$n2" "$@") || exit 1
[[ -n $first && -n $second ]] || { echo "count-instructions: no count from valgrind (see its log)" >&2; exit 1; }
echo "instructions per request: $(( (second - first) / (n2 - n1) )) (N1=$n1: $first, N2=$n2: $second)"
