-- Rotates the Host header and bearer token per request over the tenants listed in the
-- file given after `--` (one "host token" pair per line), round-robin, each wrk thread
-- starting at a different offset; an optional second argument shifts the start (so
-- consecutive wrk runs continue where the previous one stopped).
local entries = {}
local i = 0
local counter = 0

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
end

request = function()
  i = (i % #entries) + 1
  local e = entries[i]
  return wrk.format("GET", wrk.path, { ["Host"] = e[1], ["Authorization"] = e[2] })
end
