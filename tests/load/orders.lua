-- wrk script: POST /api/orders, one unit of product 1, a fresh Idempotency-Key per
-- request (thread number + counter + a per-run prefix). TOKEN: an access token;
-- RUN (optional): a prefix that tells apart wrk processes started together.
-- Usage: TOKEN=... wrk -t2 -c64 -d20s -s orders.lua http://127.0.0.1:8080

local threads = {}
local thread_no = 0

function setup(thread)
  thread_no = thread_no + 1
  thread:set("id", thread_no)
  table.insert(threads, thread)
end

function init(args)
  counter = 0
  prefix = (os.getenv("RUN") or "") .. tostring(os.time()) .. "-" .. tostring(id) .. "-"
  wrk.method = "POST"
  wrk.path = "/api/orders"
  wrk.body = '{"items":[{"product_id":1,"qty":1}]}'
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
end

function request()
  counter = counter + 1
  wrk.headers["Idempotency-Key"] = prefix .. counter
  return wrk.format()
end

function done(summary, latency, requests)
  io.write(string.format("non-2xx or errors: %d\n", summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
  io.write(string.format("p99 latency: %.2f ms\n", latency:percentile(99) / 1000))
end
