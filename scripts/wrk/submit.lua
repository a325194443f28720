-- wrk script: POST /api/v1/orders, limit buys at 1.00 spread round-robin over
-- the traders listed in $ORDERMON_TOKENS (lines "user_id token", written by
-- `ordermon-loadgen --tokens-out`). $ORDERMON_RUN makes client order ids
-- unique per run; $ORDERMON_TIF is the time in force (gtc: the orders rest).
-- done() prints one line of key=value figures for scripts/bench-submit.sh.
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  tokens = {}
  for line in io.lines(os.getenv("ORDERMON_TOKENS")) do
    local _, tok = line:match("^(%S+)%s+(%S+)$")
    if tok then tokens[#tokens + 1] = "Bearer " .. tok end
  end
  prefix = (os.getenv("ORDERMON_RUN") or "wrk") .. "-" .. tid
  tif = os.getenv("ORDERMON_TIF") or "gtc"
  counter = 0
  statuses = {}
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"client_order_id":"%s-%d","instrument_id":"LOAD.SIM","side":"buy","type":"limit","quantity":"1","price":"1.00","time_in_force":"%s"}',
    prefix, counter, tif)
  return wrk.format("POST", "/api/v1/orders",
    { ["Authorization"] = tokens[(counter + tid) % #tokens + 1],
      ["Content-Type"] = "application/json" }, body)
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
