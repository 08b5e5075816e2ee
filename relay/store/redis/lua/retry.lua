-- retry: record a failed attempt and schedule the next one.
-- ARGV: prefix, delivery id, token, attempt JSON, status, error, due ms,
--       due ns. Returns 1, 2 or 3.
local id = ARGV[2]
local dk = P .. 'dlv:' .. id
local ms, ns = now()
local h, code = held(dk, ARGV[3], ms)
if not h then return code end
redis.call('RPUSH', P .. 'att:' .. id, ARGV[4])
redis.call('ZADD', P .. 'q:' .. h.dest, ARGV[7], id)
redis.call('HSET', dk, 'n', h.n + 1, 'ls', ARGV[5], 'le', ARGV[6],
  'due', ARGV[8], 'ua', ns, 'tok', '', 'lu', 0)
return 1
