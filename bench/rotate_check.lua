-- bench/rotate.lua's round-robin over the tenants of the file given after `--`, checking
-- every answer: each request carries `X-Request-Id: <slug>.<n>`, which the product echoes;
-- every contact of the answer must have an e-mail at that slug (bench/seed.py writes
-- `user<g>@<slug>.example<n>.com`), and there must be some. A wrong, missing or unreadable
-- one is a routing error. Prints "routing checked=N errors=M" at the end.
local entries = {}
local i = 0
local n = 0
local counter = 0
local threads = {}
checked = 0
wrong = 0

setup = function(thread)
  thread:set("offset", counter)
  counter = counter + 1
  threads[#threads + 1] = thread
end

init = function(args)
  for line in io.lines(args[1]) do
    local host, token = line:match("^(%S+)%s+(%S+)$")
    if host then
      entries[#entries + 1] = { host, "Bearer " .. token, host:match("^([^.]+)") }
    end
  end
  i = ((offset or 0) * 7919 + tonumber(args[2] or "0")) % #entries
end

request = function()
  i = (i % #entries) + 1
  n = n + 1
  local e = entries[i]
  return wrk.format(
    "GET",
    wrk.path,
    { ["Host"] = e[1], ["Authorization"] = e[2], ["X-Request-Id"] = e[3] .. "." .. n }
  )
end

response = function(status, headers, body)
  checked = checked + 1
  local id = headers["X-Request-Id"] or headers["x-request-id"] or ""
  local slug = id:match("^([^.]+)%.")
  local seen = 0
  if status == 200 and slug then
    for domain in body:gmatch('"email"%s*:%s*"[^"@]*@([^".]+)%.') do
      seen = seen + 1
      if domain ~= slug then
        seen = -1
        break
      end
    end
  end
  if seen <= 0 then
    wrong = wrong + 1
  end
end

done = function(summary, latency, requests)
  local total_checked, total_wrong = 0, 0
  for _, thread in ipairs(threads) do
    total_checked = total_checked + thread:get("checked")
    total_wrong = total_wrong + thread:get("wrong")
  end
  io.write(string.format("routing checked=%d errors=%d\n", total_checked, total_wrong))
end
