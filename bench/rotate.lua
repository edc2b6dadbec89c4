-- Rotates the Host header and bearer token per request over the tenants listed in the
-- file given after `--` (one "host token" pair per line), round-robin, each wrk thread
-- starting at a different offset; an optional second argument shifts the start (so
-- consecutive wrk runs continue where the previous one stopped). A third argument
-- "zipf=S" draws each request's tenant instead: the line of rank k (from 1) with
-- probability proportional to 1 / k^S (a few hot tenants, a long tail), from a fixed seed.
local entries = {}
local i = 0
local counter = 0
local cdf = nil

setup = function(thread)
  thread:set("offset", counter)
  counter = counter + 1
end

init = function(args)
  for line in io.lines(args[1]) do
    local host, token = line:match("^(%S+)%s+(%S+)$")
    if host then
      entries[#entries + 1] = { host, "Bearer " .. token }
    end
  end
  i = ((offset or 0) * 7919 + tonumber(args[2] or "0")) % #entries
  local s = (args[3] or ""):match("^zipf=([%d.]+)$")
  if s then
    s = tonumber(s)
    cdf = {}
    local total = 0
    for k = 1, #entries do
      total = total + 1 / k ^ s
      cdf[k] = total
    end
    for k = 1, #entries do
      cdf[k] = cdf[k] / total
    end
    math.randomseed(1100 + (offset or 0))
  end
end

local function draw()
  local u = math.random()
  local lo, hi = 1, #cdf
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  return lo
end

request = function()
  if cdf then
    i = draw()
  else
    i = (i % #entries) + 1
  end
  local e = entries[i]
  return wrk.format("GET", wrk.path, { ["Host"] = e[1], ["Authorization"] = e[2] })
end
