-- accept: for each event of a batch, claim its dedupe key, store it and
-- queue its deliveries. Concurrent Accepts share one call (see batch.go);
-- each event is decided on its own, in order, as if accepted alone.
-- ARGV: prefix, number of events, then per event:
--       event id, dedupe key ('' = none), dedupe ttl ms (0 = none),
--       packed event (the "e" field, see pack.go), n, n destinations,
--       n delivery ids; on a single Redis with several partitions, then
--       per event the prefix of its partition.
-- Returns one value per event: the deliveries queued (an integer) when the
-- event is stored (or was, by this id), or the id of the event holding the
-- dedupe claim (a string) when it is a duplicate.

-- The format marker (doc.go, Format), checked at Open, is written again
-- when Redis lost it with everything else (restarted empty, flushed), so
-- that no relay data is ever without it; another format's is refused.
-- marked checks the marker of partition P once per call; it returns the
-- marker's value when it is another format's.
local checked = {}
local function marked()
  if checked[P] then return nil end
  checked[P] = true
  local mark = redis.call('GET', P .. 'format')
  if mark ~= FORMAT then
    if mark then return mark end
    redis.call('SET', P .. 'format', FORMAT)
  end
  return nil
end
local ms, ns = now()
-- Lua numbers given to redis.call are formatted with printf on every call;
-- values repeated for every event are turned into strings once.
local score = string.format('%d', ms)
-- An implicit delivery is queued half a millisecond earlier: the only
-- scores that are not whole numbers, so the lease knows it has no hash
-- without looking (see lease.lua).
local iscore = string.format('%d.5', ms - 1)
-- Delivery places as strings, for the derived ids (a Lua number joined to
-- a string is formatted as a double, with printf).
local places = {}
local out = {}
-- What many events add to the same key is written once at the end: the
-- search index, each destination's queue and depth counter.
local indexed, iorder = {}, {}
local queued, qorder = {}, {}
-- The partitions' prefixes, per event, follow the events' arguments.
local pfx = nil
local count = tonumber(ARGV[2])
do
  local a, e = 3, 0
  while e < count do
    a = a + 5 + 2 * tonumber(ARGV[a + 4])
    e = e + 1
  end
  if #ARGV >= a then pfx = a - 1 end
end
-- Every partition's marker before any write: a refusal writes nothing.
for e = 1, (pfx and count or 1) do
  if pfx then P = ARGV[pfx + e] end
  local bad = marked()
  if bad then return redis.error_reply('RELAYFORMAT ' .. bad) end
end
local a = 3
for e = 1, count do
  -- The prelude's functions build keys from P: it names the partition.
  if pfx then P = ARGV[pfx + e] end
  local id = ARGV[a]
  local nstr = ARGV[a + 4]
  local n = tonumber(nstr)
  local evk = P .. 'ev:' .. id
  local dup, res, nq = 0, id, n
  local fresh = true
  -- A client retry after a lost reply finds its own event: report it again.
  if redis.call('EXISTS', evk) == 1 then
    nq = tonumber(redis.call('HGET', evk, 'nd')) or 0
    fresh = false
  elseif ARGV[a + 1] ~= '' then
    local ddk = P .. 'dd:' .. ARGV[a + 1]
    local ttl = ARGV[a + 2]
    local ok
    if tonumber(ttl) > 0 then
      ok = redis.call('SET', ddk, id, 'NX', 'PX', ttl)
    else
      ok = redis.call('SET', ddk, id, 'NX')
    end
    if not ok then
      dup, res, nq = 1, redis.call('GET', ddk), 0
      fresh = false
    end
  end
  if fresh then
    local ids = {}
    local explicit = false -- some delivery id not derived: store 'dlvs'
    -- A delivery whose id is derived from its event's (see implicit in
    -- prelude.lua) gets no hash now: its first lease writes it.
    local derived = nil
    if string.sub(id, 1, 4) == 'evt_' then derived = 'dlv_' .. string.sub(id, 5) .. '_' end
    for i = 1, n do
      local dest, did = ARGV[a + 4 + i], ARGV[a + 4 + n + i]
      ids[i] = did
      local place = places[i]
      if not place then
        place = string.format('%d', i)
        places[i] = place
      end
      local sc = iscore
      if not derived or did ~= derived .. place then
        explicit = true
        sc = score
        redis.call('HSET', P .. 'dlv:' .. did, 'id', did, 'ev', id, 'dest', dest,
          'st', 'pending', 'n', '0', 'ca', ns, 'due', ns, 'ua', ns)
      end
      local q = queued[P .. 'q:' .. dest]
      if not q then
        q = {p = P, dest = dest}
        queued[P .. 'q:' .. dest] = q
        qorder[#qorder + 1] = q
      end
      q[#q + 1] = sc
      q[#q + 1] = did
    end
    -- The fields that never change are packed in 'e'; 'parked' is
    -- written only for a parked event, 'out' only when there are several
    -- deliveries to count (see doc.go).
    local f = {'e', ARGV[a + 3], 'nd', nstr, 'ca', ns}
    if n == 0 then
      f[7], f[8] = 'parked', '1'
    else
      if n > 1 then f[7], f[8] = 'out', nstr end
      if explicit or not derived then
        -- 'dlvs' only when some id is not derived (see dlvids in prelude.lua).
        f[#f + 1] = 'dlvs'
        f[#f + 1] = table.concat(ids, ' ')
      end
    end
    redis.call('HSET', evk, unpack(f))
    -- The search index: one score, so members sort by id, which is by time.
    local ix = indexed[P]
    if not ix then
      ix = {}
      indexed[P] = ix
      iorder[#iorder + 1] = P
    end
    ix[#ix + 1] = '0'
    ix[#ix + 1] = id
    if n == 0 then
      redis.call('ZADD', P .. 'parked', string.format('%d', stamps(1) + 1), id)
      redis.call('HINCRBY', P .. 'depth', 'parked', 1)
    end
  end
  if dup == 1 then
    out[#out + 1] = res
  else
    out[#out + 1] = nq
  end
  a = a + 5 + 2 * n
end
for _, p in ipairs(iorder) do
  redis.call('ZADD', p .. 'evidx', unpack(indexed[p]))
end
for _, q in ipairs(qorder) do
  redis.call('ZADD', q.p .. 'q:' .. q.dest, unpack(q))
  redis.call('HINCRBY', q.p .. 'depth', 'q:' .. q.dest, string.format('%d', #q / 2))
end
return out
