-- One wrk script for every figure of bench/tokens.py, steered by the environment:
--   BENCH_METHOD (GET | POST), BENCH_BODY (form body), BENCH_AUTH (Authorization header value),
--   BENCH_EXPECT (text every 200 response must contain),
--   BENCH_TOKENS / BENCH_TOKENS_OUT (refresh mode: a file of refresh tokens, one a line, read at start;
--   each request takes one, each 200 response gives its rotated successor back to the pool, and what
--   the pool holds at the end is written to BENCH_TOKENS_OUT for the next run).
-- done() prints one JSON line the benchmark parses. Run with one thread (-t1).
local method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
local auth = os.getenv("BENCH_AUTH")
local tokens_in = os.getenv("BENCH_TOKENS")
local tokens_out = os.getenv("BENCH_TOKENS_OUT")
local expect = os.getenv("BENCH_EXPECT")  -- a 200 whose body lacks this text counts as bad

local headers = {}
if auth then headers["Authorization"] = auth end
if method == "POST" then headers["Content-Type"] = "application/x-www-form-urlencoded" end

pool = {}
bad = 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  if tokens_in then
    for line in io.lines(tokens_in) do
      if #line > 0 then table.insert(pool, line) end
    end
  end
end

function request()
  if tokens_in then
    local token = table.remove(pool, 1) or "exhausted"
    return wrk.format(method, nil, headers, "grant_type=refresh_token&refresh_token=" .. token)
  end
  return wrk.format(method, nil, headers, body)
end

function response(status, hdrs, text)
  if status ~= 200 or (expect and not string.find(text, expect, 1, true)) then
    bad = bad + 1
  elseif tokens_in then
    local token = string.match(text, '"refresh_token"%s*:%s*"([^"]+)"')
    if token then table.insert(pool, token) else bad = bad + 1 end
  end
end

function done(summary, latency, requests)
  local left, bad_total = {}, 0
  for _, thread in ipairs(threads) do
    bad_total = bad_total + (thread:get("bad") or 0)
    for _, token in ipairs(thread:get("pool") or {}) do table.insert(left, token) end
  end
  if tokens_out then
    local handle = io.open(tokens_out, "w")
    handle:write(table.concat(left, "\n"), "\n")
    handle:close()
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"bad":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"left":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout, bad_total,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, #left))
end
