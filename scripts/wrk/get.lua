-- wrk script: GET requests with a bearer token. With $ORDERMON_ORDERS (lines
-- "token order_id", written by `ordermon-loadgen --orders-out`) it fetches
-- those orders round-robin (GET /api/v1/orders/{id}); without it, the URL's
-- own path (e.g. /health/live). done() prints one line like submit.lua's.
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  orders = {}
  local file = os.getenv("ORDERMON_ORDERS")
  if file and file ~= "" then
    for line in io.lines(file) do
      local tok, id = line:match("^(%S+)%s+(%S+)$")
      if id then orders[#orders + 1] = { "Bearer " .. tok, "/api/v1/orders/" .. id } end
    end
  end
  counter = tid * 7919
  statuses = {}
end

function request()
  if #orders == 0 then return wrk.format("GET") end
  counter = counter + 1
  local o = orders[counter % #orders + 1]
  return wrk.format("GET", o[2], { ["Authorization"] = o[1] })
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
