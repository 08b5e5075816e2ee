-- replay_dlq: move a dead delivery back into its queue, due now, with its
-- attempt count and age reset.
-- ARGV: prefix, delivery id. Returns 1, or 3 when it is not in the DLQ.
local id = ARGV[2]
if not redis.call('ZSCORE', P .. 'dlq', id) then return 3 end
local dk = P .. 'dlv:' .. id
local dest = redis.call('HGET', dk, 'dest')
local ms, ns = now()
redis.call('ZREM', P .. 'dlq', id)
redis.call('ZREM', P .. 'dlq:' .. dest, id)
redis.call('ZADD', P .. 'q:' .. dest, ms, id)
redis.call('HINCRBY', P .. 'depth', 'd:' .. dest, -1)
redis.call('HINCRBY', P .. 'depth', 'q:' .. dest, 1)
redis.call('HSET', dk, 'st', 'pending', 'n', 0, 'ca', ns, 'due', ns,
  'ua', ns, 'tok', '', 'lu', 0)
return 1
