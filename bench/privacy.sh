#!/usr/bin/env bash
# make bench, part 2: the privacy office on a large database.
#  1. seeds BENCH_EVENTS (default 10M) synthetic events over 30 days for one site,
#     20k consented subjects with ~100 events each (candor bench seed; generator in Sources/Store/SyntheticLoad.swift);
#  2. times subject exports (JSON, all tables) for random subjects;
#  3. purges half of them (retention 15 days) with the server's own scheduled purge while wrk
#     keeps posting events to another site of the same server, and prints ingestion p99 before
#     and during the purge.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${BENCH_EVENTS:-10000000}
CONNS=${BENCH_PURGE_CONNECTIONS:-16}
DELAY_MS=${BENCH_PURGE_DELAY_MS:-8}
BIN=.build/release/candor
WORK=$(mktemp -d /tmp/candor-privacy-bench.XXXXXX)
PORT=18082
cleanup() { [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null || true; sleep 0.5; rm -rf "$WORK"; }
trap cleanup EXIT
mkdir -p "$WORK/policies"
cp policies/default.toml "$WORK/policies/"
printf 'version = 1\n[retention]\nevents = 15\nsessions = 15\n[expire]\nsubject = 0\nclick_id = 0\n' >"$WORK/policies/bench.toml"
D=(--data "$WORK/data" --policies "$WORK/policies")

echo "== seeding $EVENTS events over 30 days"
SITE=$($BIN bench seed "${D[@]}" --events "$EVENTS" --policy bench)
echo "== database: $(du -h "$WORK/data/candor.sqlite" | cut -f1)"
echo "== subject export (JSON, all tables), 300 random subjects"
EXPORT=$($BIN bench export "${D[@]}" --site "$SITE" --samples 300)
echo "$EXPORT"

LIVE=$($BIN sites add "${D[@]}" --name Live --domain example.com)
serve() { # purge-every hours (0 = off)
  $BIN serve "${D[@]}" --port $PORT --trusted-proxy 127.0.0.1/32 --purge-every "$1" \
    --rate-site 10000000 --rate-client 10000000 --log-level warning >>"$WORK/candor.log" 2>&1 &
  PID=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
}
load() { BENCH_SITE=$LIVE BENCH_DELAY_MS=$DELAY_MS wrk -t2 -c"$CONNS" -d"$1s" -s bench/events.lua "http://127.0.0.1:$PORT/api/event" | grep '^RESULT'; }
field() { echo "$1" | tr ' ' '\n' | grep "^$2=" | cut -d= -f2; }
purged() { sqlite3 "$WORK/data/candor.sqlite" "select count(*) from job_runs where name = 'purge'"; }

serve 0
echo "== ingestion without purge ($CONNS connections, ${DELAY_MS} ms between requests each)"
BASE=$(load 10); echo "$BASE"
kill "$PID"; wait "$PID" 2>/dev/null || true
echo "== ingestion while the server's scheduled purge runs (starts with the server)"
START=$(date +%s.%N)
serve 24
WORST=0
while [ "$(purged)" = 0 ]; do
  R=$(load 5); echo "$R"
  WORST=$(awk -v a="$WORST" -v b="$(field "$R" p99_ms)" 'BEGIN { print (b > a ? b : a) }')
done
SECS=$(awk -v s="$START" -v e="$(date +%s.%N)" 'BEGIN { printf "%.0f", e - s }')
SUMMARY=$(sqlite3 "$WORK/data/candor.sqlite" "select detail from job_runs where name = 'purge'")
DELETED=$(sqlite3 "$WORK/data/candor.sqlite" "select detail from audit_log where action = 'purge_ran' order by seq desc limit 1")
echo "== purge: $SUMMARY (≤ ${SECS} s, measured in 5 s windows): $DELETED"
ROWS=$(echo "$SUMMARY" | awk '{ print $1 }')
echo "export_p50_ms=$(field "$EXPORT" export_p50_ms) export_p99_ms=$(field "$EXPORT" export_p99_ms) rows_per_export=$(field "$EXPORT" rows_per_export) ingest_p99_ms=$(field "$BASE" p99_ms) ingest_p99_during_purge_ms=$WORST purge_rows=$ROWS purge_s_le=$SECS events=$EVENTS"
