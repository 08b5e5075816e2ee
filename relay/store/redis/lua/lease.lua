-- lease: hand out up to n due deliveries of one destination. Leasing moves
-- the delivery's score to now+lease, so an unfinished lease makes it due
-- again by itself.
-- ARGV: prefix, destination, n, lease ms, token base.
-- Returns {{delivery fields...}, {event fields...}} per leased delivery.
local dest = ARGV[2]
local q = P .. 'q:' .. dest
local ms = now()
-- The expiry is a string once, not a Lua number formatted on every call.
local lu = string.format('%d', ms + tonumber(ARGV[4]))
local ids = redis.call('ZRANGEBYSCORE', q, '-inf', ms, 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
local moved = {}

-- materialize writes the hash of an implicit delivery (see implicit in
-- prelude.lua), leased with tok, and returns its fields as HGETALL would,
-- and its event id; nil when id is no implicit delivery.
local function materialize(id, tok)
  local evid, ca = implicit(id)
  if not evid then return nil end
  local h = {'id', id, 'ev', evid, 'dest', dest, 'st', 'pending', 'n', '0',
    'ca', ca, 'due', ca, 'ua', ca, 'tok', tok, 'lu', lu}
  redis.call('HSET', P .. 'dlv:' .. id, unpack(h))
  return h, evid
end

for i, id in ipairs(ids) do
  local dk = P .. 'dlv:' .. id
  local tok = ARGV[5] .. '.' .. i
  local h
  local evid = redis.call('HGET', dk, 'ev')
  if evid then
    redis.call('HSET', dk, 'tok', tok, 'lu', lu)
    h = redis.call('HGETALL', dk)
  else
    h, evid = materialize(id, tok)
  end
  if not evid then
    -- Defensive: never hand out a queue entry without its delivery.
    redis.call('ZREM', q, id)
  else
    moved[#moved + 1] = lu
    moved[#moved + 1] = id
    out[#out + 1] = {h, redis.call('HGETALL', P .. 'ev:' .. evid)}
  end
end
-- One ZADD per 500 leased entries (unpack's stack is bounded): they all
-- move to now+lease.
for j = 1, #moved, 1000 do
  redis.call('ZADD', q, unpack(moved, j, math.min(j + 999, #moved)))
end
return out
