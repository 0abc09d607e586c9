-- wrk script: realistic, varied single-event POSTs to /api/event.
-- Each request is built from rotating paths, referrers, UTM tags, consent states, user agents and
-- client addresses (X-Forwarded-For from a trusted proxy); every event has a fresh random UUID as its id, as
-- pixel.js sends (crypto.randomUUID), so the idempotency index sees random keys.
local site = os.getenv("BENCH_SITE")
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
local unique_ua = os.getenv("BENCH_UNIQUE_UA") == "1"
local paths = {"/", "/pricing", "/blog/how-we-count", "/docs/install", "/signup", "/blog/2024/05/launch", "/about", "/contact"}
local refs = {"", "https://www.google.com/search?q=candor", "https://news.ycombinator.com/item?id=1", "https://t.co/abc",
              "https://duckduckgo.com/", "https://blog.example.org/post", "https://mail.google.com/mail/u/0"}
local utm = {"", "?utm_source=newsletter&utm_medium=email&utm_campaign=nov", "?gclid=abc123", "?utm_source=twitter&utm_medium=social"}
local uas = {
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
  "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
}
local consents = {'"unset"', '"denied"', '{"analytics":true,"marketing":false}', '{"analytics":true,"marketing":true}'}
local ips = {"81.2.69.142", "89.160.20.112", "216.160.83.56", "2001:218::1", "175.16.199.7"}
local counter = 0
local thread_id = 0

function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
end

function init(args)
  math.randomseed(os.time() + (tid or 0))
end

function delay()
  return delay_ms
end

function request()
  counter = counter + 1
  local i = counter
  local id = string.format("%04x%04x-%04x-4%03x-%04x-%04x%04x%04x", math.random(0, 65535), math.random(0, 65535),
    math.random(0, 65535), math.random(0, 4095), math.random(32768, 49151), math.random(0, 65535), math.random(0, 65535),
    math.random(0, 65535))
  local name = (i % 10 == 0) and "signup" or "pageview"
  local body = string.format('{"site":"%s","name":"%s","url":"https://example.com%s%s","referrer":"%s","id":"%s","consent":%s,"screen":%d%s}',
    site, name, paths[i % #paths + 1], utm[i % #utm + 1], refs[i % #refs + 1], id, consents[i % #consents + 1],
    ({390, 820, 1280, 1920})[i % 4 + 1], (name == "signup") and ',"props":{"plan":"pro"},"value":49,"currency":"USD"' or "")
  local ip = ips[i % #ips + 1]
  if not ip:find(":") then ip = ip:gsub("%d+$", tostring(i % 250 + 1)) end
  return wrk.format("POST", "/api/event", {
    ["Content-Type"] = "text/plain",
    -- BENCH_UNIQUE_UA=1: every request a user agent never seen before (no classifier cache hit).
    ["User-Agent"] = unique_ua and (uas[i % #uas + 1] .. " Build/" .. (tid or 0) .. "." .. i) or uas[i % #uas + 1],
    ["X-Forwarded-For"] = ip,
  }, body)
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT rps=%.0f p50_ms=%.3f p99_ms=%.3f requests=%d errors=%d\n",
    summary.requests / secs, latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.requests, errors))
end
