#!/usr/bin/env bash
# Ingestion of this build against a baseline build, paired in one run: the two servers take turns
# (A B A B …) under the same wrk load on fresh data directories, so drift on the machine hits both.
# BENCH_BASELINE_BIN: the baseline's candor binary; or BENCH_BASELINE: a git ref, built here in a
# worktree under /tmp (a release build: minutes). Prints median events/s of each and the ratio,
# with the benchmark's mixed user agents (mostly cache hits) and with every user agent new
# (BENCH_UNIQUE_UA=1: each request classified from scratch).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${BENCH_ROUNDS:-3}
DURATION=${BENCH_DURATION:-10}
CONNS=${BENCH_CONNECTIONS:-64}
CURRENT=${CANDOR_BIN:-.build/release/candor}
# BENCH_POLICIES: the policies both builds load (a baseline may not know a newer policy mode).
POLICIES=${BENCH_POLICIES:-policies}
BASE=${BENCH_BASELINE_BIN:-}
if [ -z "$BASE" ]; then
  [ -n "${BENCH_BASELINE:-}" ] || { echo "set BENCH_BASELINE (a git ref) or BENCH_BASELINE_BIN"; exit 2; }
  SHA=$(git rev-parse --short "$BENCH_BASELINE")
  TREE=/tmp/candor-baseline-$SHA
  [ -d "$TREE" ] || git worktree add -q "$TREE" "$SHA"
  (cd "$TREE" && swift build -c release >/dev/null)
  BASE=$TREE/.build/release/candor
fi
WORK=$(mktemp -d /tmp/candor-paired.XXXXXX)
PORT=18090
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null || true; sleep 0.3; rm -rf "$WORK"; }
trap cleanup EXIT

run_one() { # binary, unique_ua -> events/s
  local bin=$1 data="$WORK/d$RANDOM$RANDOM"
  local site; site=$($bin sites add --data "$data" --policies "$POLICIES" --name Bench --domain example.com)
  $bin serve --data "$data" --policies "$POLICIES" --port $PORT --trusted-proxy 127.0.0.1/32 --rate-site 10000000 --rate-client 10000000 \
    --geoip-city Tests/CandorTests/Fixtures/candor-city-test.mmdb --geoip-asn Tests/CandorTests/Fixtures/candor-asn-test.mmdb \
    --log-level warning >"$data.log" 2>&1 &
  PID=$!
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
  BENCH_SITE=$site BENCH_UNIQUE_UA=$2 wrk -t2 -c"$CONNS" -d3s -s bench/events.lua "http://127.0.0.1:$PORT/api/event" >/dev/null
  BENCH_SITE=$site BENCH_UNIQUE_UA=$2 wrk -t2 -c"$CONNS" -d"${DURATION}s" -s bench/events.lua "http://127.0.0.1:$PORT/api/event" \
    | grep '^RESULT' | tr ' ' '\n' | grep '^rps=' | cut -d= -f2
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

echo "== paired ingestion: baseline $BASE vs current $CURRENT, $ROUNDS rounds of ${DURATION} s each, $CONNS connections"
LINE=""
for unique in 0 1; do
  A=(); B=()
  for r in $(seq "$ROUNDS"); do
    A+=("$(run_one "$BASE" $unique)"); B+=("$(run_one "$CURRENT" $unique)")
  done
  MA=$(printf '%s\n' "${A[@]}" | median); MB=$(printf '%s\n' "${B[@]}" | median)
  RATIO=$(awk -v b="$MB" -v a="$MA" 'BEGIN { printf "%.3f", b / a }')
  label=$([ $unique = 1 ] && echo "every user agent new" || echo "mixed user agents")
  echo "$label: baseline ${A[*]} (median $MA) current ${B[*]} (median $MB) ratio $RATIO"
  LINE="$LINE $([ $unique = 1 ] && echo unique || echo mixed)_baseline_rps=$MA $([ $unique = 1 ] && echo unique || echo mixed)_current_rps=$MB $([ $unique = 1 ] && echo unique || echo mixed)_ratio=$RATIO"
done
echo "RESULT${LINE}"
