-- wrk script for scripts/soak.sh: one class of traffic per wrk process, every answer
-- counted by status.
--
--   wrk ... -s scripts/soak.lua URL -- CLASS DELAY_MS [TOKENS_FILE]
--
-- CLASS is one of
--   valid      POST /v1/activations with the tokens of TOKENS_FILE, in turn (200)
--   expired    the same with expired tokens (401 token_expired)
--   garbage    junk tokens, tampered signatures, broken JSON, wrong shapes, unknown
--              members, a token in body and header, wrong methods and paths (400, 401,
--              404, 405); TOKENS_FILE gives the valid tokens to tamper with
--   badtype    a well-formed body under a content type other than JSON (415)
--   oversized  bodies over 16 KiB (413)
-- DELAY_MS is the pause each connection takes before each request (wrk's delay()).
-- done() prints one line per status: "status CLASS STATUS COUNT".

local threads = {}
local count = 0

function setup(thread)
  thread:set("id", count)
  count = count + 1
  table.insert(threads, thread)
end

local function read_tokens(file)
  local list = {}
  for line in io.lines(file) do
    if #line > 0 then list[#list + 1] = line end
  end
  return list
end

function init(args)
  class = args[1]
  pause = tonumber(args[2]) or 0
  tokens = {}
  if args[3] then tokens = read_tokens(args[3]) end
  -- Each thread starts at its own place in the file.
  next_token = 1 + (id * 7919) % math.max(#tokens, 1)
  n, g = 0, 0
  counts = {}
  wrk.method = "POST"
  wrk.path = "/v1/activations"
  wrk.headers["Content-Type"] = "application/json"
end

local function take()
  local t = tokens[next_token]
  next_token = next_token + 1
  if next_token > #tokens then next_token = 1 end
  return t
end

local function activation(token)
  n = n + 1
  return '{"token":"' .. token .. '","user":"soak","device":"dev-' .. (n % 5000) .. '"}'
end

local json = { ["Content-Type"] = "application/json" }

-- A valid token with one character of its signature changed: costs a signature check.
local function tampered()
  local t = take()
  local dot = t:find(".", t:find(".", 1, true) + 1, true)
  local i = dot + 10
  local c = t:sub(i, i)
  local r = (c == "A") and "B" or "A"
  return t:sub(1, i - 1) .. r .. t:sub(i + 1)
end

local garbage = {
  function() return wrk.format("POST", "/v1/activations", json, activation("not.a.token")) end,
  function() return wrk.format("POST", "/v1/activations", json, activation(tampered())) end,
  function() return wrk.format("POST", "/v1/activations", json, activation("eyJhbGciOiJub25lIn0.e30.")) end,
  function() return wrk.format("POST", "/v1/activations", json, activation(string.rep("A", 2000))) end,
  function() return wrk.format("POST", "/v1/activations", json, '{"token":') end,
  function() return wrk.format("POST", "/v1/activations", json, '["token"]') end,
  function() return wrk.format("POST", "/v1/activations", json, '{"token":"a","admin":true}') end,
  function() return wrk.format("POST", "/v1/activations", json, '{"token":7}') end,
  function() return wrk.format("POST", "/v1/activations", json, '{}') end,
  function() return wrk.format("POST", "/v1/activations", json, '') end,
  function() return wrk.format("POST", "/v1/activations", json, '{"token":"a","token":"b"}') end,
  function() return wrk.format("POST", "/v1/activations", json, '{"token":"\\ud800"}') end,
  function()
    local h = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer x.y.z" }
    return wrk.format("POST", "/v1/activations", h, activation("x.y.z"))
  end,
  function() return wrk.format("GET", "/v1/activations", {}, nil) end,
  function() return wrk.format("GET", "/v1/no-such-route", {}, nil) end,
  function() return wrk.format("POST", "/v1/activations", json, activation("a.b.c\226\128\174")) end,
}

local badtypes = {
  "text/plain",
  "application/x-www-form-urlencoded",
  "application/json; charset=latin1",
  "multipart/form-data; boundary=x",
  "application/jsonx",
  "application/json; boundary=x",
}

local big = '{"token":"' .. string.rep("x", 17 * 1024) .. '"}'
local bigger = '{"user":"' .. string.rep("u", 64 * 1024) .. '"}'

function request()
  if class == "valid" or class == "expired" then
    return wrk.format(nil, nil, nil, activation(take()))
  elseif class == "garbage" then
    g = g + 1
    return garbage[(g % #garbage) + 1]()
  elseif class == "badtype" then
    n = n + 1
    local ct = badtypes[(n % #badtypes) + 1]
    return wrk.format("POST", "/v1/activations", { ["Content-Type"] = ct }, '{"token":"a.b.c"}')
  elseif class == "oversized" then
    n = n + 1
    return wrk.format("POST", "/v1/activations", json, (n % 2 == 0) and big or bigger)
  end
end

function delay()
  return pause
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
  -- done() runs in wrk's main script state: the class comes from a thread's.
  local class = threads[1]:get("class")
  local total = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("counts") or {}) do
      total[k] = (total[k] or 0) + v
    end
  end
  for k, v in pairs(total) do
    io.write(string.format("status %s %d %d\n", class, k, v))
  end
  local e = summary.errors
  io.write(string.format("errors %s connect=%d read=%d write=%d timeout=%d\n",
    class, e.connect, e.read, e.write, e.timeout))
  io.write(string.format("latency %s p50=%d p99=%d max=%d\n", class,
    latency:percentile(50), latency:percentile(99), latency.max))
end
