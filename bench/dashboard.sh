#!/usr/bin/env bash
# make bench-dashboard: 10M synthetic events over 30 days for one site (candor bench seed; generator in
# Sources/Store/SyntheticLoad.swift), rollups built, then
#  1. the rollups built (each day read once, as the analytics engine holds it; time, memory),
#     today's refreshed, then the site view's figures timed in process: 30 days unfiltered,
#     and where country = DE;
#  2. the whole site page a user opens, over HTTP from `candor serve` as the owner: 30 days
#     unfiltered, with 1, 2 and 3 filters (several dimension mixes) and an event filter, and
#     today; p50/p99 per case, a case given up after BENCH_TIMEOUT seconds per request; then
#     three of them again right after a late event (a queued pageview dated yesterday).
# The last line is machine-readable.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${BENCH_EVENTS:-10000000}
SAMPLES=${BENCH_SAMPLES:-5}
TIMEOUT=${BENCH_TIMEOUT:-120}
BIN=${CANDOR_BIN:-.build/release/candor}
PORT=18090
WORK=$(mktemp -d /tmp/candor-dashboard-bench.XXXXXX)
cleanup() {
  [ -n "${CANDOR_PID:-}" ] && kill "$CANDOR_PID" 2>/dev/null || true
  sleep 0.5; rm -rf "$WORK"
}
trap cleanup EXIT
D=(--data "$WORK/data" --policies policies)
echo "== seeding $EVENTS events over 30 days"
SITE=$($BIN bench seed "${D[@]}" --events "$EVENTS")
echo "== rollups, then 20 runs of each query"
OUT=$($BIN bench dashboard "${D[@]}" --site "$SITE" --samples 20)
echo "$OUT"
R=$(echo "$OUT" | grep '^RESULT')

echo "== the site page over HTTP ($SAMPLES requests per case, owner)"
PASSWORD=$($BIN users add "${D[@]}" --email bench@example.org --role owner | awk '{print $3}')
TOKEN=bench-metrics-token-0123456789
# Rollups every 10 minutes: the late-event cases run before the job rebuilds the day.
$BIN serve "${D[@]}" --port $PORT --log-level warning --metrics-token "$TOKEN" --rollups-every 600 >"$WORK/candor.log" 2>&1 &
CANDOR_PID=$!
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
# The server loads the engine at start (its first rollup run): wait until every day is in memory.
STARTED=$(date +%s)
for _ in $(seq 1200); do
  days=$(curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/metrics" | awk '/^candor_engine_days_loaded/ {print $2}')
  [ "${days:-0}" -ge 31 ] && break
  sleep 0.5
done
LOADED=$(( $(date +%s) - STARTED ))
RSS=$(ps -o rss= -p $CANDOR_PID | awk '{printf "%d", $1/1024}')
echo "engine loaded by the server: ${days:-0} day(s) in $LOADED s after start; RSS $RSS MB"
JAR="$WORK/cookies"
curl -sf -c "$JAR" -o /dev/null -d "email=bench@example.org&password=$PASSWORD" "http://127.0.0.1:$PORT/login"

# case name, query
CASES=(
  "unfiltered|range=30d"
  "country|range=30d&f.country=DE"
  "source|range=30d&f.source_type=organic"
  "page|range=30d&f.path=/pricing"
  "country+device|range=30d&f.country=DE&f.device=desktop"
  "country+browser+source|range=30d&f.country=DE&f.browser=Chrome&f.source_type=organic"
  "campaign+country|range=30d&f.utm_campaign=campaign-1&f.country=US"
  "city|range=30d&f.city=City%201"
  "referrer+device|range=30d&f.referrer_host=site-3.example.net&f.device=mobile"
  "page+event|range=30d&f.path=/pricing&f.name=signup"
  "event|range=30d&f.name=engagement"
  "7d+browser|range=7d&f.browser=Safari"
  "today|range=today"
  "today+country|range=today&f.country=DE"
)
LINE=""
time_cases() {
  local prefix=$1; shift
  for c in "$@"; do
    name=$prefix${c%%|*}; query=${c#*|}
    times=()
    status=ok
    for _ in $(seq "$SAMPLES"); do
      out=$(curl -s -b "$JAR" -o /dev/null --max-time "$TIMEOUT" -w '%{http_code} %{time_total}' "http://127.0.0.1:$PORT/sites/$SITE?$query" || true)
      code=${out%% *}
      if [ "$code" != "200" ]; then status="failed:$code"; break; fi
      times+=("${out#* }")
    done
    if [ "$status" != ok ]; then
      echo "$name: $status (after ${#times[@]} request(s); a request is given up after $TIMEOUT s)"
      LINE="$LINE page_${name}_p50_ms=timeout"
      continue
    fi
    sorted=$(printf '%s\n' "${times[@]}" | sort -g)
    p50=$(echo "$sorted" | awk '{a[NR]=$1} END {printf "%.0f", a[int((NR+1)/2)]*1000}')
    p99=$(echo "$sorted" | awk '{a[NR]=$1} END {printf "%.0f", a[NR]*1000}')
    echo "$name: p50 ${p50} ms, max ${p99} ms ($query)"
    LINE="$LINE page_${name}_p50_ms=$p50 page_${name}_max_ms=$p99"
  done
}
time_cases "" "${CASES[@]}"
# A browser that was offline sends a queued pageview dated yesterday (late events arrive all
# the time on a live site): the same views again before the rollup job's next run rebuilds the day.
echo "== after a late event (queued pageview dated 26 hours ago)"
LATE_TS=$(( $(date +%s%3N) - 26 * 3600 * 1000 ))
curl -sf -o /dev/null -H 'Content-Type: text/plain' -H 'User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36' \
  --data "{\"site\":\"$SITE\",\"url\":\"https://bench.example/late\",\"id\":\"late-event-1\",\"ts\":$LATE_TS}" "http://127.0.0.1:$PORT/api/event"
time_cases "late_" "unfiltered|range=30d" "country|range=30d&f.country=DE" "7d+browser|range=7d&f.browser=Safari"
echo "${R#RESULT } events=$EVENTS serve_engine_load_s=$LOADED serve_rss_mb=$RSS$LINE"
