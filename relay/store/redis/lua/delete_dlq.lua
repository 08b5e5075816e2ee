-- delete_dlq: take a dead delivery out of the DLQ for good. It stays in its
-- event's record as discarded and counts as finished for retention.
-- ARGV: prefix, delivery id, retention ms. Returns 1, or 3 when it is not
-- in the DLQ.
local id = ARGV[2]
if not redis.call('ZSCORE', P .. 'dlq', id) then return 3 end
local dk = P .. 'dlv:' .. id
local h = redis.call('HMGET', dk, 'dest', 'ev', 'nd')
local ms, ns = now()
redis.call('ZREM', P .. 'dlq', id)
redis.call('ZREM', P .. 'dlq:' .. h[1], id)
redis.call('HINCRBY', P .. 'depth', 'd:' .. h[1], -1)
redis.call('HSET', dk, 'st', 'discarded', 'ua', ns)
if h[3] == '1' or redis.call('HINCRBY', P .. 'ev:' .. h[2], 'out', -1) <= 0 then
  retire(h[2], ARGV[3], ms, siblings(id, h[2], h[3]))
end
return 1
