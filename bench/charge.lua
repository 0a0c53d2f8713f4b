-- wrk script: POST /v1/charges with an API key and a fresh Idempotency-Key per request.
-- Environment: ROOST_KEY (the rsk_ secret).
local counter = 0
local tid = 0
local threads = {}
statuses = {}

function setup(thread)
  tid = tid + 1
  thread:set("tid", tid)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() + tid * 7919)
  prefix = string.format("w%d-%d-", tid, math.random(1, 1000000000))
  headers = {}
  headers["Authorization"] = "Bearer " .. os.getenv("ROOST_KEY")
  headers["Content-Type"] = "application/json"
  body = '{"amount":1,"action":"bench.charge"}'
end

function request()
  counter = counter + 1
  headers["Idempotency-Key"] = prefix .. counter
  return wrk.format("POST", "/v1/charges", headers, body)
end

function response(status, hdrs, b)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    if s then
      for k, v in pairs(s) do
        io.write(string.format("status %s %d\n", k, v))
      end
    end
  end
end
