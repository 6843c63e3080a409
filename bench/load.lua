-- wrk script of `npm run bench` (driven by bench/load-generator.ts).
--
--   wrk -t1 -c<conns> -d<s>s -s bench/load.lua <url> -- <requests file> <seed>
--
-- The requests file has one line per seeded user: an auth header name, its
-- value and the JSON body, tab-separated (the bench writes it per workload
-- and server). Every request goes out as a random one of those users. A body
-- holding @APIKEY@ and @SECRETKEY@ (W2) gets fresh random keys on every
-- request. done() prints one JSON line: wrk's figures, the 2xx answers that
-- carried GraphQL errors, and wrk's own CPU (utime + stime, clock ticks).

local requests = {}
local graphqlErrors = 0
local threads = {}

local hex = '0123456789ABCDEF'
local b64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

local function randomChars(alphabet, n)
  local out = {}
  for i = 1, n do
    local k = math.random(#alphabet)
    out[i] = alphabet:sub(k, k)
  end
  return table.concat(out)
end

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(tonumber(args[2]) or os.time())
  for line in io.lines(args[1]) do
    local name, value, body = line:match('^([^\t]+)\t([^\t]+)\t(.+)$')
    local headers = { ['Content-Type'] = 'application/json', ['Accept'] = 'application/json' }
    headers[name] = value
    if body:find('@APIKEY@', 1, true) then
      table.insert(requests, { headers = headers, body = body })
    else
      -- Fixed body: format the whole request once.
      table.insert(requests, { raw = wrk.format('POST', '/graphql', headers, body) })
    end
  end
  if #requests == 0 then error('no requests in ' .. args[1]) end
end

function request()
  local r = requests[math.random(#requests)]
  if r.raw then return r.raw end
  -- The shapes of test/support/workloads.ts randomAlpacaKeys().
  local body = r.body
    :gsub('@APIKEY@', 'PK' .. randomChars(hex, 18), 1)
    :gsub('@SECRETKEY@', randomChars(b64, 40), 1)
  return wrk.format('POST', '/graphql', r.headers, body)
end

-- A 200 answer can still be a failed operation: GraphQL reports errors in the body.
function response(status, headers, body)
  if status >= 200 and status < 300 and body:find('"errors"', 1, true) then
    graphqlErrors = graphqlErrors + 1
  end
end

local function ownCpuTicks()
  local f = io.open('/proc/self/stat', 'r')
  if not f then return -1 end
  local stat = f:read('*a')
  f:close()
  -- Fields after the ')' that closes the command name: state is field 3,
  -- utime field 14 and stime field 15 (proc(5)).
  local fields = {}
  for v in stat:sub(stat:find(')', 1, true) + 2):gmatch('%S+') do table.insert(fields, v) end
  return tonumber(fields[12]) + tonumber(fields[13])
end

function done(summary, latency, requests)
  local gqlErrors = 0
  for _, thread in ipairs(threads) do gqlErrors = gqlErrors + (thread:get('graphqlErrors') or 0) end
  local e = summary.errors
  io.write(string.format(
    '\nBENCH_RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,' ..
      '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"graphqlErrors":%d,"cpu_ticks":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout, gqlErrors, ownCpuTicks()))
end
