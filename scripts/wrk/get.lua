-- wrk script: GET requests with a bearer token. With $ORDERMON_ORDERS (lines
-- "token order_id", written by `ordermon-loadgen --orders-out`) it fetches
-- those orders round-robin (GET /api/v1/orders/{id}); without it, the URL's
-- own path (e.g. /health/live). done() prints one line like submit.lua's.
-- setup(), response() and done(): shared with the other scripts.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")

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
