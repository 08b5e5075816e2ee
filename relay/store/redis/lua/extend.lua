-- extend: push a held lease's expiry to now+lease.
-- ARGV: prefix, delivery id, token, lease ms. Returns 1 ok, 2 lost, 3 missing.
local dk = P .. 'dlv:' .. ARGV[2]
local ms = now()
local h, code = held(dk, ARGV[3], ms)
if not h then return code end
local until_ms = ms + tonumber(ARGV[4])
redis.call('ZADD', P .. 'q:' .. h.dest, until_ms, ARGV[2])
redis.call('HSET', dk, 'lu', until_ms)
return 1
