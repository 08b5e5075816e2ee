-- lease: hand out up to n due deliveries of one destination. Leasing moves
-- the delivery's score to now+lease, so an unfinished lease makes it due
-- again by itself.
-- ARGV: prefix, destination, n, lease ms, token base.
-- Returns {{delivery fields...}, {event fields...}} per leased delivery.
local q = P .. 'q:' .. ARGV[2]
local lease = tonumber(ARGV[4])
local ms = now()
local ids = redis.call('ZRANGEBYSCORE', q, '-inf', ms, 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for i, id in ipairs(ids) do
  local dk = P .. 'dlv:' .. id
  local evid = redis.call('HGET', dk, 'ev')
  if not evid then evid = materialize(id, ARGV[2]) end
  if not evid then
    -- Defensive: never hand out a queue entry without its delivery.
    redis.call('ZREM', q, id)
  else
    local tok = ARGV[5] .. '.' .. i
    redis.call('ZADD', q, ms + lease, id)
    redis.call('HSET', dk, 'tok', tok, 'lu', ms + lease)
    out[#out + 1] = {redis.call('HGETALL', dk), redis.call('HGETALL', P .. 'ev:' .. evid)}
  end
end
return out
