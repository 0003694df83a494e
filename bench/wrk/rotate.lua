-- wrk script for tierca's benchmarks: rotates over pre-made requests, one per line of the file named
-- by the first script argument ("POST <hex body>" for POST /ocsp, or "GET <path>").
--
-- wrk's default wrk.resolve() opens and closes a connection to every address before the run. That
-- probe makes `openssl ocsp` 3.0 spin at 100 % CPU and stop answering (see
-- /work/shared/PERFORMANCE-NOTES.md), so this script resolves without connecting; every target gets
-- the same script so the comparison stays fair.
function wrk.resolve(host, service)
   wrk.addrs = wrk.lookup(host, service)
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
   assert(n > 0, "no requests in " .. path)
   -- Threads start at different places in the list so they do not ask for the same serial in step.
   i = (tonumber(args[2] or "0") or 0) % n
   math.randomseed(os.time() + n)
   i = math.random(0, n - 1)
end

function request()
   i = i + 1
   if i > n then i = 1 end
   return requests[i]
end
