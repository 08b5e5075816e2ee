-- accept: claim the dedupe key, store the event, queue its deliveries.
-- ARGV: prefix, event id, dedupe key ('' = none), dedupe ttl ms (0 = none),
--       webhook id, dedupe value, content type, body, received ns ('' = now),
--       destinations JSON, n, n destinations, n delivery ids.
-- Returns {duplicate 0|1, event id, deliveries queued}.
local id = ARGV[2]
local evk = P .. 'ev:' .. id
-- A client retry after a lost reply finds its own event: report it again.
if redis.call('EXISTS', evk) == 1 then
  return {0, id, tonumber(redis.call('HGET', evk, 'nd')) or 0}
end
if ARGV[3] ~= '' then
  local ddk = P .. 'dd:' .. ARGV[3]
  local ttl = tonumber(ARGV[4])
  local ok
  if ttl > 0 then
    ok = redis.call('SET', ddk, id, 'NX', 'PX', ttl)
  else
    ok = redis.call('SET', ddk, id, 'NX')
  end
  if not ok then
    return {1, redis.call('GET', ddk), 0}
  end
end
local ms, ns = now()
local rcv = ARGV[9]
if rcv == '' then rcv = ns end
local n = tonumber(ARGV[11])
local dests, ids = {}, {}
for i = 1, n do
  dests[i] = ARGV[11 + i]
  ids[i] = ARGV[11 + n + i]
end
local parked = 0
if n == 0 then parked = 1 end
redis.call('HSET', evk, 'id', id, 'wh', ARGV[5], 'dk', ARGV[6], 'ct', ARGV[7],
  'body', ARGV[8], 'rcv', rcv, 'dests', ARGV[10], 'parked', parked,
  'out', n, 'nd', n, 'dlvs', table.concat(ids, ' '))
-- The search index: one score, so members sort by id, which is by time.
redis.call('ZADD', P .. 'evidx', 0, id)
if n == 0 then
  local seq = redis.call('INCR', P .. 'seq')
  redis.call('ZADD', P .. 'parked', seq, id)
  redis.call('HINCRBY', P .. 'depth', 'parked', 1)
else
  enqueue(id, dests, ids, ms, ns)
end
return {0, id, n}
