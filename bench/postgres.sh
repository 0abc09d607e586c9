#!/usr/bin/env bash
# make bench-pg: the collector's write stage on SQLite and on PostgreSQL, the same rows in one run.
# A throwaway PostgreSQL server (scripts/pg-test-server: initdb in a temporary directory, loopback,
# fsync on, the Debian defaults otherwise) on this machine; `candor bench pipeline` parses and runs
# the pipeline once, then writes the rows to the SQLite file and to PostgreSQL, timed apart, at
# several batch sizes (the group-commit writer's transactions grow with load). Storage only: no
# HTTP, one process; wrk against PostgreSQL nodes comes with `candor serve --database-url`.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${CANDOR_BIN:-.build/release/candor}
EVENTS=${BENCH_EVENTS:-50000}
WORK=$(mktemp -d /tmp/candor-bench-pg.XXXXXX)
PG=$(mktemp -d /tmp/candor-bench-pg-server.XXXXXX)
cleanup() { scripts/pg-test-server stop "$PG" >/dev/null 2>&1 || true; rm -rf "$WORK" "$PG"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

URL=$(scripts/pg-test-server start "$PG")
echo "== machine: $(nproc) cores; PostgreSQL $(psql "$URL" -Atc 'SHOW server_version'), fsync $(psql "$URL" -Atc 'SHOW fsync'), synchronous_commit $(psql "$URL" -Atc 'SHOW synchronous_commit'); $EVENTS events per run"
for batch in 8 64 512; do
  db="bench_$batch"
  psql "$URL" -qc "CREATE DATABASE $db"
  line=$($BIN bench pipeline --data "$WORK/data-$batch" --policies policies --events "$EVENTS" --batch "$batch" \
    --database-url "${URL%/*}/$db" | grep '^RESULT')
  echo "batch $batch: $line"
  sqlite_ns=$(echo "$line" | tr ' ' '\n' | grep '^write_ns=' | cut -d= -f2)
  pg_ns=$(echo "$line" | tr ' ' '\n' | grep '^postgres_write_ns=' | cut -d= -f2)
  echo "RESULT batch=$batch sqlite_events_per_s=$(awk -v n="$sqlite_ns" 'BEGIN{printf "%.0f", 1e9/n}') postgres_events_per_s=$(awk -v n="$pg_ns" 'BEGIN{printf "%.0f", 1e9/n}') postgres_share=$(awk -v a="$sqlite_ns" -v b="$pg_ns" 'BEGIN{printf "%.2f", a/b}')"
done
