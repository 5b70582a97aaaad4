-- wrk script: POST /api/pay/notify/shop, each request the next line of $NOTIFICATIONS
-- (timestamp, nonce, signature, serial, body; tab-separated), as WeChat Pay sends
-- them. Threads take alternate lines; once a thread has used its lines it starts over,
-- and the repeats are duplicates (acknowledged, nothing changed).
-- Usage: NOTIFICATIONS=file wrk -t2 -c64 -d10s -s pay-notify.lua http://127.0.0.1:8080

local thread_no = 0

function setup(thread)
  thread:set("id", thread_no)
  thread_no = thread_no + 1
end

function init(args)
  lines = {}
  local n = 0
  for line in io.lines(os.getenv("NOTIFICATIONS")) do
    if n % 2 == id then
      local ts, nonce, sig, serial, body = line:match("^([^\t]+)\t([^\t]+)\t([^\t]+)\t([^\t]+)\t(.*)$")
      table.insert(lines, {ts, nonce, sig, serial, body})
    end
    n = n + 1
  end
  next_line = 0
  wrk.method = "POST"
  wrk.path = "/api/pay/notify/shop"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  local l = lines[next_line % #lines + 1]
  next_line = next_line + 1
  wrk.headers["Wechatpay-Timestamp"] = l[1]
  wrk.headers["Wechatpay-Nonce"] = l[2]
  wrk.headers["Wechatpay-Signature"] = l[3]
  wrk.headers["Wechatpay-Serial"] = l[4]
  wrk.body = l[5]
  return wrk.format()
end

function done(summary, latency, requests)
  io.write(string.format("non-2xx or errors: %d\n", summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
  io.write(string.format("p99 latency: %.2f ms\n", latency:percentile(99) / 1000))
end
