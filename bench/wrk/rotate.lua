-- wrk script for tierca's benchmarks (bench/lib/wrk.ts): rotates over pre-made requests, one per
-- line of the file named by the first script argument:
--   POST <hex DER>   a POST /ocsp with that body (Content-Type application/ocsp-request)
--   GET <path>       a GET of that path (e.g. /ocsp/<url-encoded base64 request>)
--
-- wrk's default wrk.resolve() opens and closes a connection to the target before the run. That
-- probe makes `openssl ocsp` 3.0 spin at 100 % CPU and stop answering (PERFORMANCE-NOTES.md,
-- openssl#31129), so this script resolves without connecting. Every target gets the same script.
function wrk.resolve(host, service)
   wrk.addrs = wrk.lookup(host, service)
end

-- Number the threads (setup runs in the main Lua state, init in each thread's own state), so that
-- each thread starts at a different place in the list instead of asking for the same serials in step.
local threads = 0
function setup(thread)
   thread:set("id", threads)
   threads = threads + 1
end

local requests = {}
local n = 0
local i = 0

local function unhex(s)
   return (s:gsub("..", function(cc) return string.char(tonumber(cc, 16)) end))
end

function init(args)
   local path = args[1]
   local f = assert(io.open(path, "r"), "cannot open " .. tostring(path))
   for line in f:lines() do
      local method, rest = line:match("^(%u+) (.+)$")
      if method == "POST" then
         n = n + 1
         requests[n] = wrk.format("POST", "/ocsp", { ["Content-Type"] = "application/ocsp-request" }, unhex(rest))
      elseif method == "GET" then
         n = n + 1
         requests[n] = wrk.format("GET", rest)
      end
   end
   f:close()
   assert(n > 0, "no requests in " .. tostring(path))
   i = ((id or 0) * 7919) % n
end

function request()
   i = i + 1
   if i > n then i = 1 end
   return requests[i]
end
