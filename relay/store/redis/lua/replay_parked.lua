-- replay_parked: route a parked event to destinations, queued due now.
-- ARGV: prefix, event id, destinations JSON, n, n destinations,
--       n delivery ids. Returns the deliveries queued, or -1 when the event
--       is not parked.
local id = ARGV[2]
if not redis.call('ZSCORE', P .. 'parked', id) then return -1 end
local n = tonumber(ARGV[4])
if n == 0 then return 0 end
local dests, ids = {}, {}
for i = 1, n do
  dests[i] = ARGV[4 + i]
  ids[i] = ARGV[4 + n + i]
end
local evk = P .. 'ev:' .. id
local ms, ns = now()
redis.call('ZREM', P .. 'parked', id)
redis.call('HINCRBY', P .. 'depth', 'parked', -1)
local prior = table.concat(dlvids(evk, id), ' ')
if prior ~= '' then prior = prior .. ' ' end
redis.call('HSET', evk, 'parked', 0, 'dests', ARGV[3],
  'dlvs', prior .. table.concat(ids, ' '))
-- 'out' counts only when there are several deliveries (see doc.go); an
-- event is parked only when accepted with none, so these are all it has.
if n > 1 then redis.call('HINCRBY', evk, 'out', n) end
redis.call('HINCRBY', evk, 'nd', n)
enqueue(id, dests, ids, ms, ns)
return n
