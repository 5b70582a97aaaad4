-- wrk script: POST /api/auth/login with single-use codes minted beforehand.
-- Usage: wrk -t2 -c64 -d20s -s login.lua http://127.0.0.1:8080
-- Reads codes (one per line) from the file named by CODES (default codes.txt).

local codes = {}
local next_index = 1
local stride = 1

local thread_counter = 0

function setup(thread)
  thread:set("thread_id", thread_counter)
  thread_counter = thread_counter + 1
end

function init(args)
  local path = os.getenv("CODES") or "codes.txt"
  for line in io.lines(path) do
    codes[#codes + 1] = line
  end
  local id = tonumber(thread_id) or 0
  local count = tonumber(os.getenv("THREADS") or "2")
  next_index = id + 1
  stride = count
  wrk.method = "POST"
  wrk.path = "/api/auth/login"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  local code = codes[next_index]
  next_index = next_index + stride
  if code == nil then
    return wrk.format(nil, "/api/auth/login", nil, '{"code":"exhausted"}')
  end
  return wrk.format(nil, nil, nil, '{"code":"' .. code .. '"}')
end

function done(summary, latency, requests)
  io.write(string.format("non-2xx or errors: %d\n", summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
