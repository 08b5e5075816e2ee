-- prelude.lua is prepended to every script, after FORMAT, the format
-- version (format.go). ARGV[1] is always the key prefix.
-- Scripts build key names from it and from stored ids; on Redis Cluster the
-- prefix is one hash tag (cluster.go), so every key is in KEYS[1]'s slot.
local P = ARGV[1]

-- now returns the Redis server's clock, so that every process sharing this
-- Redis agrees on due times and lease expiry: milliseconds as a number (for
-- scores) and nanoseconds as a decimal string (a Lua double cannot hold it).
local function now()
  local t = redis.call('TIME')
  local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  return ms, t[1] .. string.format('%06d', tonumber(t[2])) .. '000'
end

-- stamps reserves k scores for the DLQ and parked sets and returns the one
-- before the first: the scores are base+1 to base+k. They are the server's
-- clock in microseconds, but always above the last ones given (kept in
-- 'seq'), so a set lists in the order its members came, and the sets of
-- several partitions merge in that order too (partition.go). A Lua double
-- holds such a number exactly.
local function stamps(k)
  local t = redis.call('TIME')
  local us = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local base = math.max(tonumber(redis.call('GET', P .. 'seq')) or 0, us - 1)
  redis.call('SET', P .. 'seq', string.format('%d', base + k))
  return base
end

-- enqueue stores one pending delivery per destination, due now.
local function enqueue(evid, dests, ids, ms, ns)
  for i = 1, #dests do
    local dest, id = dests[i], ids[i]
    redis.call('HSET', P .. 'dlv:' .. id, 'id', id, 'ev', evid, 'dest', dest,
      'st', 'pending', 'n', 0, 'ca', ns, 'due', ns, 'ua', ns)
    redis.call('ZADD', P .. 'q:' .. dest, ms, id)
    redis.call('HINCRBY', P .. 'depth', 'q:' .. dest, 1)
  end
end

-- derived returns the event id and place of a delivery whose id is derived
-- from its event's ("dlv_X_i" -> "evt_X", i its 1-based place in the
-- event's route), or nil for any other id.
local function derived(id)
  local x, place = string.match(id, '^dlv_(.+)_(%d+)$')
  if not x then return nil end
  return 'evt_' .. x, tonumber(place)
end

-- listed reports whether an event whose fields "nd" and "dlvs" are given
-- (false or nil when absent) has the derived delivery id at place.
local function listed(id, place, nd, dlvs)
  if dlvs then
    return string.find(' ' .. dlvs .. ' ', ' ' .. id .. ' ', 1, true) ~= nil
  end
  return place <= (tonumber(nd) or 0)
end

-- implicit returns the event id and creation time (ns) of a delivery that
-- exists only implicitly: accept stores no hash for a delivery whose id is
-- derived from its event's and that is still in its queue untouched:
-- pending, no attempt, created and due when the event was stored. Its first
-- lease writes the hash (see lease.lua); every later change finds it.
-- Returns nil when id is not such an id of a stored event.
local function implicit(id)
  local evid, place = derived(id)
  if not evid then return nil end
  local h = redis.call('HMGET', P .. 'ev:' .. evid, 'ca', 'nd', 'dlvs')
  if not h[1] or not listed(id, place, h[2], h[3]) then return nil end
  return evid, h[1]
end

-- derivedids returns the delivery ids of event evid when they are all
-- derived from its id: "dlv_X_1" to "dlv_X_nd" for event "evt_X" (none
-- for any other id).
local function derivedids(evid, nd)
  local ids = {}
  if string.sub(evid, 1, 4) == 'evt_' then
    local x = 'dlv_' .. string.sub(evid, 5) .. '_'
    for i = 1, tonumber(nd or '0') do ids[i] = x .. i end
  end
  return ids
end

-- dlvids returns the delivery ids of the event stored at evk: its "dlvs",
-- or, when an accept left that out because every id is derived, its
-- derivedids.
local function dlvids(evk, evid)
  local h = redis.call('HMGET', evk, 'dlvs', 'nd')
  if not h[1] then return derivedids(evid, h[2]) end
  local ids = {}
  for d in string.gmatch(h[1], '%S+') do ids[#ids + 1] = d end
  return ids
end

-- held returns the fields of a delivery whose live lease token is tok, or
-- nil and a status code: 2 when the lease is lost (another token, expired,
-- or the delivery is no longer pending), 3 when the delivery does not exist.
-- The fields: dest, ev, n (a number), and la and nd (false when absent).
local function held(dk, tok, ms)
  local h = redis.call('HMGET', dk, 'st', 'tok', 'lu', 'dest', 'ev', 'n', 'la', 'nd')
  if not h[1] then
    -- A delivery never leased holds no lease: lost, not missing.
    if implicit(string.sub(dk, #P + 5)) then return nil, 2 end
    return nil, 3
  end
  if h[1] ~= 'pending' or h[2] ~= tok or (tonumber(h[3]) or 0) < ms then
    return nil, 2
  end
  return {dest = h[4], ev = h[5], n = tonumber(h[6]), la = h[7], nd = h[8]}
end

-- expire lets a finished event (no delivery left to make) expire, with its
-- deliveries and attempt logs, after ret ms. Its search index entry goes
-- later, see unindex. ids are its delivery ids when the caller knows them
-- (nil: read them); the attempt log of the delivery skip, when given, is
-- known not to exist and is left alone.
local function expire(evid, ret, ids, skip)
  local evk = P .. 'ev:' .. evid
  for _, d in ipairs(ids or dlvids(evk, evid)) do
    redis.call('PEXPIRE', P .. 'dlv:' .. d, ret)
    if d ~= skip then redis.call('PEXPIRE', P .. 'att:' .. d, ret) end
  end
  redis.call('PEXPIRE', evk, ret)
end

-- unindex records when expired events go (exp: expiry ms, event id, ...)
-- in evexp, and drops the search index entries of up to 16 events per
-- event recorded whose time has come, so the index keeps up with them.
local function unindex(exp, ms)
  redis.call('ZADD', P .. 'evexp', unpack(exp))
  local gone = redis.call('ZRANGEBYSCORE', P .. 'evexp', '-inf', ms, 'LIMIT', 0, 8 * #exp)
  if #gone > 0 then
    redis.call('ZREM', P .. 'evidx', unpack(gone))
    redis.call('ZREM', P .. 'evexp', unpack(gone))
  end
end

-- siblings returns the delivery ids of the event evid as its delivery id
-- says them with the "nd" of its hash (see lease.lua): {id} for an event's
-- only delivery, else its derivedids; or nil when the hash has no "nd",
-- and the event's ids must be read.
local function siblings(id, evid, nd)
  if nd == '1' then return {id} end
  if nd then return derivedids(evid, nd) end
  return nil
end

-- retire is expire and unindex for one event; ids as for expire.
local function retire(evid, ret, ms, ids)
  expire(evid, ret, ids)
  unindex({string.format('%d', ms + tonumber(ret)), evid}, ms)
end
