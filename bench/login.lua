-- POST /api/auth/login with the JSON body in the file given after `--`.
init = function(args)
  local f = assert(io.open(args[1], "r"))
  wrk.body = f:read("*a")
  f:close()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end
