-- release: give a held delivery back, due at a given time, with no attempt.
-- ARGV: prefix, delivery id, token, due ms, due ns. Returns 1, 2 or 3.
local id = ARGV[2]
local dk = P .. 'dlv:' .. id
local ms, ns = now()
local h, code = held(dk, ARGV[3], ms)
if not h then return code end
redis.call('ZADD', P .. 'q:' .. h.dest, ARGV[4], id)
redis.call('ZREM', P .. 'lz:' .. h.dest, id) -- see lease.lua
redis.call('HSET', dk, 'due', ARGV[5], 'ua', ns, 'tok', '', 'lu', 0)
return 1
