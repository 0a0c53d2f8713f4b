-- wrk script for bench/records-http.sh: workspace records over HTTP, one API key per connection
-- (run wrk with as many threads as connections, so each thread owns one connection and one key).
-- Environment: ROOST_KEYS, a file of "SECRET WORKSPACE_ID" lines (at least as many as threads);
-- ROOST_MODE, one of
--   read    GET /v1/workspaces/{ws}/state/bench/doc/N, N cycling over ROOST_DOCS documents
--   write   PUT /v1/workspaces/{ws}/state/bench/conn-T (each connection its own key, unconditional)
--   append  POST /v1/workspaces/{ws}/history with a unique Idempotency-Key per request
-- At the end it prints "status CODE COUNT" lines.
local threads = {}
local keys = {}
for line in io.lines(os.getenv("ROOST_KEYS")) do
  local secret, ws = line:match("^(%S+)%s+(%S+)$")
  if secret then table.insert(keys, {secret, ws}) end
end
local mode = os.getenv("ROOST_MODE") or "read"
local docs = tonumber(os.getenv("ROOST_DOCS") or "100")

function setup(thread)
  table.insert(threads, thread)
  local id = #threads
  local k = keys[(id - 1) % #keys + 1]
  thread:set("tidx", id)
  thread:set("secret", k[1])
  thread:set("ws", k[2])
end

function init(args)
  math.randomseed(os.time() + tidx * 7919)
  prefix = string.format("r%d-%d-", tidx, math.random(1, 1000000000))
  counter = 0
  statuses = {}
  headers = {}
  headers["Authorization"] = "Bearer " .. secret
  headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  if mode == "read" then
    return wrk.format("GET", string.format("/v1/workspaces/%s/state/bench/doc/%d", ws, counter % docs), headers)
  elseif mode == "write" then
    local body = string.format('{"conversation":"c-%d","turns":%d,"model":"large","summary":"a short summary of the conversation so far"}', tidx, counter)
    return wrk.format("PUT", string.format("/v1/workspaces/%s/state/bench/conn-%d", ws, tidx), headers, body)
  else
    headers["Idempotency-Key"] = prefix .. counter
    local body = string.format('{"kind":"conversation.turn","ref":"conv-%d","data":{"role":"user","text":"message %d of a benchmark conversation"}}', tidx, counter)
    return wrk.format("POST", string.format("/v1/workspaces/%s/history", ws), headers, body)
  end
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
