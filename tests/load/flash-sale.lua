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
  local tokens = {}
  for line in io.lines(os.getenv("TOKENS")) do
    table.insert(tokens, line)
  end
  counter = 0
  accepted = {}
  answers = {}
  -- Each buyer's request up to its key's counter, built once: a request is then one
  -- concatenation, not wrk.format's header table walked per request (wrk shares the
  -- cores with the app, so its cost per request lowers what the app is measured at).
  local body = '{"items":[{"product_id":1,"qty":1}]}'
  local head = "POST /api/orders HTTP/1.1\r\nHost: " .. wrk.host .. ":" .. wrk.port
    .. "\r\nContent-Type: application/json\r\nContent-Length: " .. #body
    .. "\r\nAuthorization: Bearer "
  local key = "\r\nIdempotency-Key: " .. tostring(os.time()) .. "-" .. tostring(id) .. "-"
  heads = {}
  for i, token in ipairs(tokens) do
    heads[i] = head .. token .. key
  end
  ending = "\r\n\r\n" .. body
  buyers = #tokens
end

function request()
  counter = counter + 1
  -- Threads walk the buyers from different places.
  return heads[((counter * 7919 + id * 104729) % buyers) + 1] .. counter .. ending
end

function response(status, headers, body)
  local key = status
  if status == 202 then
    accepted[#accepted + 1] = string.match(body, '"order_id":(%d+)')
  else
    key = status .. " " .. (string.match(body, '"code":"([%w_]+)"') or "")
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
