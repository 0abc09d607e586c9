#!/usr/bin/env bash
# make bench-dashboard: 10M synthetic events over 30 days for one site (candor bench seed; generator in
# Sources/Store/SyntheticLoad.swift), rollups built, then the site view's queries timed:
# the 30-day overview (summary, every breakdown, entry/exit pages, engagement, daily chart) from the rollups,
# and a filtered breakdown (pages where country = DE) from the raw events.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${BENCH_EVENTS:-10000000}
BIN=.build/release/candor
WORK=$(mktemp -d /tmp/candor-dashboard-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
D=(--data "$WORK/data" --policies policies)
echo "== seeding $EVENTS events over 30 days"
SITE=$($BIN bench seed "${D[@]}" --events "$EVENTS")
echo "== rollups, then 20 runs of each query"
R=$($BIN bench dashboard "${D[@]}" --site "$SITE" --samples 20)
echo "$R"
echo "${R#RESULT } events=$EVENTS"
