-- wrk script for bench/charges-http.sh: POST /v1/charges, one API key per connection (run wrk with
-- as many threads as connections, so each thread owns one connection and one key), a unique
-- Idempotency-Key per request, and a count of the response statuses.
-- Environment: ROOST_KEYS, a file with one rsk_ secret per line (at least as many as threads).
-- At the end it prints "status CODE COUNT" lines, and "unanswered SECRET IDEMPOTENCY-KEY" for each
-- request sent without an answer (in flight when wrk stopped, or lost to a reconnect), so the
-- caller can replay it and know exactly which charges were made.
local threads = {}
local secrets = {}
for line in io.lines(os.getenv("ROOST_KEYS")) do
  if line ~= "" then table.insert(secrets, line) end
end

function setup(thread)
  table.insert(threads, thread)
  local id = #threads
  thread:set("tidx", id)
  thread:set("secret", secrets[(id - 1) % #secrets + 1])
end

function init(args)
  math.randomseed(os.time() + tidx * 7919)
  prefix = string.format("h%d-%d-", tidx, math.random(1, 1000000000))
  counter = 0
  statuses = {}
  unanswered = {}
  pending = nil
  headers = {}
  headers["Authorization"] = "Bearer " .. secret
  headers["Content-Type"] = "application/json"
  body = '{"amount":1,"action":"bench.charge"}'
end

function request()
  if pending then
    -- The previous request got no answer (its connection was replaced).
    table.insert(unanswered, pending)
  end
  counter = counter + 1
  pending = prefix .. counter
  headers["Idempotency-Key"] = pending
  return wrk.format("POST", "/v1/charges", headers, body)
end

function response(status, hdrs, b)
  statuses[status] = (statuses[status] or 0) + 1
  pending = nil
end

function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    if s then
      for k, v in pairs(s) do
        io.write(string.format("status %s %d\n", k, v))
      end
    end
    local key = t:get("secret")
    local u = t:get("unanswered") or {}
    local p = t:get("pending")
    if p then table.insert(u, p) end
    for _, idem in ipairs(u) do
      io.write(string.format("unanswered %s %s\n", key, idem))
    end
  end
end
