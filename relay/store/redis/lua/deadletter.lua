-- deadletter: record the last attempt and move the delivery to the DLQ.
-- The DLQ sets are scored by a sequence number, so they list in the order
-- deliveries died and page by that number exactly.
-- ARGV: prefix, delivery id, token, attempt JSON, status, error.
-- Returns 1, 2 or 3.
local id = ARGV[2]
local dk = P .. 'dlv:' .. id
local ms, ns = now()
local h, code = held(dk, ARGV[3], ms)
if not h then return code end
redis.call('RPUSH', P .. 'att:' .. id, ARGV[4])
redis.call('ZREM', P .. 'q:' .. h.dest, id)
local seq = redis.call('INCR', P .. 'seq')
redis.call('ZADD', P .. 'dlq', seq, id)
redis.call('ZADD', P .. 'dlq:' .. h.dest, seq, id)
redis.call('HINCRBY', P .. 'depth', 'q:' .. h.dest, -1)
redis.call('HINCRBY', P .. 'depth', 'd:' .. h.dest, 1)
redis.call('HSET', dk, 'st', 'dead', 'n', h.n + 1, 'ls', ARGV[5],
  'le', ARGV[6], 'ua', ns, 'tok', '', 'lu', 0)
return 1
