-- wrk script: POST /api/orders for product 1 on flash sale, one unit, a fresh
-- Idempotency-Key per request, the buyers taken in turn from TOKENS (a file of
-- access tokens, one per line). Writes the order ids answered 202 to ACCEPTED (a
-- file, one per line) and counts the answers by status and code.
-- Usage: TOKENS=... ACCEPTED=... wrk -t2 -c64 -d10s -s flash-sale.lua http://127.0.0.1:8080

local threads = {}
local thread_no = 0

function setup(thread)
  thread_no = thread_no + 1
  thread:set("id", thread_no)
  table.insert(threads, thread)
end

function init(args)
  tokens = {}
  for line in io.lines(os.getenv("TOKENS")) do
    table.insert(tokens, line)
  end
  counter = 0
  accepted = {}
  answers = {}
  prefix = tostring(os.time()) .. "-" .. tostring(id) .. "-"
  wrk.method = "POST"
  wrk.path = "/api/orders"
  wrk.body = '{"items":[{"product_id":1,"qty":1}]}'
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  -- Threads walk the buyers from different places.
  local buyer = ((counter * 7919 + id * 104729) % #tokens) + 1
  wrk.headers["Authorization"] = "Bearer " .. tokens[buyer]
  wrk.headers["Idempotency-Key"] = prefix .. counter
  return wrk.format()
end

function response(status, headers, body)
  local key = tostring(status)
  if status == 202 then
    table.insert(accepted, string.match(body, '"order_id":(%d+)'))
  else
    key = key .. " " .. (string.match(body, '"code":"([%w_]+)"') or "")
  end
  answers[key] = (answers[key] or 0) + 1
end

function done(summary, latency, requests)
  local out = io.open(os.getenv("ACCEPTED"), "w")
  local counts = {}
  for _, thread in ipairs(threads) do
    for _, order_id in ipairs(thread:get("accepted")) do
      out:write(order_id, "\n")
    end
    for k, n in pairs(thread:get("answers")) do
      counts[k] = (counts[k] or 0) + n
    end
  end
  out:close()
  for k, n in pairs(counts) do
    io.write(string.format("answers %s: %d\n", k, n))
  end
  io.write(string.format("p99 latency: %.2f ms\n", latency:percentile(99) / 1000))
end
