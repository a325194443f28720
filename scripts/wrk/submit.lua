-- wrk script: POST /api/v1/orders, limit buys at 1.00 spread round-robin over
-- the traders listed in $ORDERMON_TOKENS (lines "user_id token", written by
-- `ordermon-loadgen --tokens-out`). $ORDERMON_RUN makes client order ids
-- unique per run; $ORDERMON_TIF is the time in force (gtc: the orders rest).
-- done() prints one line of key=value figures for scripts/bench-submit.sh.
-- setup(), response() and done(): shared with the other scripts.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")

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
