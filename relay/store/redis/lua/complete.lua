-- complete: record the successful attempt and finish the delivery. When it
-- was the event's last unfinished delivery, the event, its deliveries and
-- their attempt logs expire after the retention.
-- ARGV: prefix, delivery id, token, attempt JSON, status, error,
--       retention ms. Returns 1, 2 or 3.
local id = ARGV[2]
local dk = P .. 'dlv:' .. id
local ms, ns = now()
local h, code = held(dk, ARGV[3], ms)
if not h then return code end
redis.call('RPUSH', P .. 'att:' .. id, ARGV[4])
redis.call('ZREM', P .. 'q:' .. h.dest, id)
redis.call('HINCRBY', P .. 'depth', 'q:' .. h.dest, -1)
redis.call('HSET', dk, 'st', 'delivered', 'n', string.format('%d', h.n + 1), 'ls', ARGV[5],
  'le', ARGV[6], 'ua', ns, 'tok', '', 'lu', '0')
if redis.call('HINCRBY', P .. 'ev:' .. h.ev, 'out', -1) <= 0 then
  retire(h.ev, ARGV[7], ms)
end
return 1
