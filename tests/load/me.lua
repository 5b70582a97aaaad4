-- wrk script: GET /api/me with one user's access token (TOKEN environment variable).
-- Usage: TOKEN=... wrk -t2 -c64 -d20s -s me.lua http://127.0.0.1:8080

function init(args)
  wrk.path = "/api/me"
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
end

function done(summary, latency, requests)
  io.write(string.format("non-2xx or errors: %d\n", summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
