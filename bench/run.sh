#!/usr/bin/env bash
# make bench: Candor's collector vs nginx `return 204` under the same wrk load, in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${BENCH_DURATION:-10}
CONNS=${BENCH_CONNECTIONS:-64}
BIN=${CANDOR_BIN:-.build/release/candor}
WORK=$(mktemp -d /tmp/candor-bench.XXXXXX)
CANDOR_PORT=18080
NGINX_PORT=18081
cleanup() {
  [ -n "${CANDOR_PID:-}" ] && kill "$CANDOR_PID" 2>/dev/null || true
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  sleep 0.5; rm -rf "$WORK"
}
trap cleanup EXIT

echo "== machine: $(nproc) cores, $(grep MemTotal /proc/meminfo | awk '{print int($2/1024)" MB"}'), wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}'), $DURATION s per run, $CONNS connections"

SITE=$($BIN sites add --data "$WORK/data" --name Bench --domain example.com)
METRICS_TOKEN="bench-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
$BIN serve --data "$WORK/data" --port $CANDOR_PORT --trusted-proxy 127.0.0.1/32 --metrics-token "$METRICS_TOKEN" \
  --geoip-city Tests/CandorTests/Fixtures/candor-city-test.mmdb --geoip-asn Tests/CandorTests/Fixtures/candor-asn-test.mmdb \
  --rate-site 10000000 --rate-client 10000000 --log-level warning >"$WORK/candor.log" 2>&1 &
CANDOR_PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$CANDOR_PORT/healthz" >/dev/null && break; sleep 0.1; done

mkdir -p "$WORK/nginx/logs"
cat >"$WORK/nginx/nginx.conf" <<CONF
worker_processes auto;
pid $WORK/nginx.pid;
error_log $WORK/nginx/logs/error.log;
events { worker_connections 1024; }
http {
  access_log $WORK/nginx/logs/access.log;
  server { listen 127.0.0.1:$NGINX_PORT; location / { return 204; } }
}
CONF
nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx"
sleep 0.5

run_wrk() { # url, delay_ms
  BENCH_SITE=$SITE BENCH_DELAY_MS=$2 wrk -t2 -c"$CONNS" -d"${DURATION}s" -s bench/events.lua "$1" | grep '^RESULT'
}
field() { echo "$1" | tr ' ' '\n' | grep "^$2=" | cut -d= -f2; }

echo "== warm-up"; BENCH_SITE=$SITE wrk -t2 -c"$CONNS" -d3s -s bench/events.lua "http://127.0.0.1:$CANDOR_PORT/api/event" >/dev/null
echo "== nginx return 204 (max)";  N=$(run_wrk "http://127.0.0.1:$NGINX_PORT/api/event" 0); echo "$N"
cpu_ticks() { awk '{print $14 + $15}' /proc/$CANDOR_PID/stat; }
echo "== candor POST /api/event (max)"
T0=$(cpu_ticks); C=$(run_wrk "http://127.0.0.1:$CANDOR_PORT/api/event" 0); T1=$(cpu_ticks); echo "$C"
# Candor's own CPU time (user + system) per request of the max run, in microseconds.
CPU_US=$(awk -v t="$((T1 - T0))" -v hz="$(getconf CLK_TCK)" -v n="$(echo "$C" | tr ' ' '\n' | grep '^requests=' | cut -d= -f2)" 'BEGIN { printf "%.0f", t / hz * 1e6 / n }')
MAX=$(field "$C" rps)
# Half the max rate: each connection waits so that CONNS connections together send MAX/2 per second.
DELAY=$(awk -v c="$CONNS" -v m="$MAX" 'BEGIN { printf "%d", c * 1000 / (m / 2) }')
echo "== candor at half the max rate (delay ${DELAY} ms per connection)"; H=$(run_wrk "http://127.0.0.1:$CANDOR_PORT/api/event" "$DELAY"); echo "$H"

RSS=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' /proc/$CANDOR_PID/status)
STORED=$(sqlite3 "$WORK/data/candor.sqlite" "select count(*) from events")
echo "== events stored: $STORED; candor peak RSS: ${RSS} MB"
curl -s -H "Authorization: Bearer $METRICS_TOKEN" "http://127.0.0.1:$CANDOR_PORT/metrics" | grep -E '^candor_writer_batch_size_(sum|count)|^candor_events_dropped_total' | grep -v ' 0$' || true
RATIO=$(awk -v c="$MAX" -v n="$(field "$N" rps)" 'BEGIN { printf "%.2f", c / n }')
echo "ratio_vs_nginx=$RATIO events_per_s=$MAX p50_ms=$(field "$C" p50_ms) p99_ms=$(field "$C" p99_ms) half_rate_rps=$(field "$H" rps) half_rate_p99_ms=$(field "$H" p99_ms) rss_mb=$RSS cpu_us_per_event=$CPU_US nginx_rps=$(field "$N" rps)"
