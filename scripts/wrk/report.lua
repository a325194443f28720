-- Shared by the wrk scripts of scripts/bench-submit.sh: numbers each thread
-- (`tid`), counts the statuses answered, and prints one line of key=value
-- figures at the end:
-- RESULT requests= seconds= rate= p50_ms= p99_ms= max_ms= statuses= socket_errors=
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local by = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for k, v in pairs(s) do by[k] = (by[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(by) do parts[#parts + 1] = k .. ":" .. v end
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d seconds=%.3f rate=%.1f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f statuses=%s socket_errors=%d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    table.concat(parts, ","), e.connect + e.read + e.write + e.timeout))
end
