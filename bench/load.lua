-- wrk script for every scenario: `wrk -s load.lua URL -- SPEC_FILE`.
--
-- The spec file (written by bench/wrk.py, mode 600: it holds the client
-- secret, which must not appear in argv) has one `key value` per line:
--   method GET|POST         path /token           auth Basic ...
--   delay MS                (pause before each request: a paced connection)
--   max N                   (stop after N answers; 0: run for the duration)
--   mode static|chain|once
--   body FORM               (repeatable; static: sent round-robin)
--   token REFRESH_TOKEN     (repeatable; chain: the initial refresh tokens;
--                            once: whole bodies, each sent once)
-- In chain mode each answer's new refresh token goes back into the pool and
-- is sent by the next request, so every request presents a distinct token,
-- as a client that rotates does. The pool starts with one token per
-- connection, so a request always finds one unless a chain broke.
-- done() prints one JSON line: counts, errors and latency percentiles (us).

local spec = { bodies = {}, tokens = {}, delay = 0, max = 0 }
local answered = 0
local pool, next_body = {}, 1
bad_body = 0 -- a global: done() reads it from each thread

local function read_spec(file)
  for line in io.lines(file) do
    local key, value = line:match("^(%S+) (.*)$")
    if key == "body" then
      table.insert(spec.bodies, value)
    elseif key == "token" then
      table.insert(spec.tokens, value)
    elseif key then
      spec[key] = value
    end
  end
end

function init(args)
  read_spec(args[1])
  wrk.method = spec.method
  wrk.path = spec.path
  if spec.auth then
    wrk.headers["Authorization"] = spec.auth
  end
  if spec.method == "POST" then
    wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  end
  for _, t in ipairs(spec.tokens) do
    table.insert(pool, t)
  end
end

function delay()
  return tonumber(spec.delay)
end

local checked = false

function request()
  local body = nil
  if not checked then
    -- wrk calls request() once right after init() to check the script (and
    -- count pipelined requests); that one is never sent, so it takes no token.
    checked = true
  elseif spec.mode == "chain" then
    local token = table.remove(pool) or "broken-chain"
    body = "grant_type=refresh_token&refresh_token=" .. token
  elseif spec.mode == "once" then
    body = table.remove(pool) or "grant_type=none-left"
  elseif #spec.bodies > 0 then
    body = spec.bodies[next_body]
    next_body = next_body % #spec.bodies + 1
  end
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  answered = answered + 1
  if answered == tonumber(spec.max) then
    wrk.thread:stop()
  end
  if status ~= 200 then
    -- wrk counts it (status errors); keep the first answer to say why
    sample = sample or (status .. " " .. body:sub(1, 200))
    return
  end
  if spec.mode == "chain" then
    local token = body:match('"refresh_token"%s*:%s*"([^"]+)"')
    if token then
      table.insert(pool, token)
    else
      bad_body = bad_body + 1
    end
  end
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local bad, why = 0, ""
  for _, t in ipairs(threads) do
    bad = bad + (t:get("bad_body") or 0)
    why = t:get("sample") or why
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,'
      .. '"write_errors":%d,"status_errors":%d,"timeouts":%d,"bad_bodies":%d,'
      .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"sample":"%s"}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status,
    e.timeout, bad, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, (why:gsub('[%c"\\]', "?"))))
end
