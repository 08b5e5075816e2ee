-- lease: hand out up to n due deliveries of one destination. Leasing moves
-- the delivery's score to now+lease, so an unfinished lease makes it due
-- again by itself.
-- ARGV: prefix, destination, n, lease ms, token base; on a single Redis
--       with several partitions, then per partition its prefix and token
--       base: the n oldest due deliveries of all of them are leased, in
--       one call (partition.go).
-- Returns {{delivery fields...}, {event fields...}} per leased delivery.
local dest = ARGV[2]
local n = tonumber(ARGV[3])
local ms = now()
-- The expiry is a string once, not a Lua number formatted on every call.
local lu = string.format('%d', ms + tonumber(ARGV[4]))
local parts = {{P, ARGV[5]}}
if #ARGV > 5 then
  parts = {}
  for j = 6, #ARGV, 2 do parts[#parts + 1] = {ARGV[j], ARGV[j + 1]} end
end
local q, lz

-- restore looks at the leases of this destination whose time has come.
local function restore()
  -- lz indexes this destination's leases by the expiry they were taken
  -- with. A lease that ran out unextended (its relay died) puts its delivery
  -- back at the due time it had when leased ('od'), so another relay reaches
  -- it in due order rather than after its own backlog; the rest of the
  -- entries (finished, released, retried, taken again) are dropped, and an
  -- extended lease is looked at again at its new expiry.
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', lz, '-inf', ms, 'LIMIT', 0, 128)) do
    local v = redis.call('HMGET', P .. 'dlv:' .. id, 'lu', 'od')
    local exp = tonumber(v[1])
    local sc = tonumber(redis.call('ZSCORE', q, id))
    if exp and sc == exp and exp > ms then
      redis.call('ZADD', lz, exp, id)
    else
      if exp and sc == exp and v[2] then
        -- A whole number: the delivery has its hash since it was leased.
        redis.call('ZADD', q, math.floor(tonumber(v[2])), id)
      end
      redis.call('ZREM', lz, id)
    end
  end
end

-- The prelude's functions build keys from P: it names the partition at
-- work.
for _, pt in ipairs(parts) do
  P = pt[1]
  q, lz = P .. 'q:' .. dest, P .. 'lz:' .. dest
  restore()
end
-- How many to take from each partition: with one, n; with several, as many
-- as each holds of the n oldest due of all (ties by id, as in a queue).
local take, dues = {n}, {}
if #parts > 1 then
  -- A merge of the partitions' due members, each list in queue order,
  -- read in chunks of about its share of n, and more when the merge runs
  -- through a chunk: heads[j] is the place of partition j's next member
  -- in dues[j], and ended[j] says its list has no more.
  local chunk = math.floor(n / #parts) + 2
  local heads, ended = {}, {}
  local function more(j)
    local d = dues[j]
    local got = redis.call('ZRANGEBYSCORE', parts[j][1] .. 'q:' .. dest, '-inf', ms, 'WITHSCORES', 'LIMIT', #d / 2, chunk)
    for i = 1, #got do d[#d + 1] = got[i] end
    ended[j] = #got < 2 * chunk
  end
  for j = 1, #parts do
    take[j], dues[j], heads[j] = 0, {}, 1
    more(j)
  end
  for _ = 1, n do
    local best, bs, bid = nil, nil, nil
    for j = 1, #parts do
      local d, h = dues[j], heads[j]
      if h > #d and not ended[j] then more(j) end
      if h < #d then
        local sc = tonumber(d[h + 1])
        if not best or sc < bs or (sc == bs and d[h] < bid) then
          best, bs, bid = j, sc, d[h]
        end
      end
    end
    if not best then break end
    take[best] = take[best] + 1
    heads[best] = heads[best] + 2
  end
end

local out = {}

-- field returns the value of name in fields as HGETALL returns them.
local function field(fields, name)
  for j = 1, #fields, 2 do
    if fields[j] == name then return fields[j + 1] end
  end
  return nil
end

-- nd returns the event's 'nd' (whose fields are ev) for its delivery's
-- hash when the outcome that finishes the event can do with it instead of
-- the event's ids (see siblings in prelude.lua): when it is 1, or when
-- there is no 'dlvs' because every id is derived. Else nil.
local function nd(ev)
  local n = field(ev, 'nd')
  if n == '1' or (n and not field(ev, 'dlvs')) then return n end
  return nil
end

-- hold stores the lease tok in the hash dk, whose fields cur were just
-- read, with 'nd' as nd says, and returns its fields as they now are,
-- without reading them again.
local function hold(dk, cur, tok, ev, od)
  local set = {tok = tok, lu = lu, od = od, nd = nd(ev)}
  if set.nd then
    redis.call('HSET', dk, 'tok', tok, 'lu', lu, 'od', od, 'nd', set.nd)
  else
    redis.call('HSET', dk, 'tok', tok, 'lu', lu, 'od', od)
  end
  for j = 1, #cur, 2 do
    local v = set[cur[j]]
    if v then
      cur[j + 1] = v
      set[cur[j]] = nil
    end
  end
  for k, v in pairs(set) do
    cur[#cur + 1] = k
    cur[#cur + 1] = v
  end
  return cur
end

-- leaseIn leases up to k due deliveries of the partition P, with tokens
-- under base; due, when given, holds its due members as the merge above
-- read them.
local function leaseIn(k, base, due)
  -- Members and scores: a score that is not a whole number marks a
  -- delivery that accept queued with no hash (see accept.lua), which
  -- nothing has moved since, as any later change of its score makes it a
  -- whole number.
  if not due then
    due = redis.call('ZRANGEBYSCORE', q, '-inf', ms, 'WITHSCORES', 'LIMIT', 0, k)
  end
  local moved = {}
  for i = 1, math.min(k, #due / 2) do
    local id = due[2 * i - 1]
    local dk = P .. 'dlv:' .. id
    local tok = base .. '.' .. i
    local h, ev
    local evid, place = derived(id)
    if evid then
      -- Its event's fields, sent anyway, say whether it is implicit. A score
      -- that is not a whole number says it has no hash yet; a whole one
      -- says it has, as whatever moved it since accept wrote the hash.
      ev = redis.call('HGETALL', P .. 'ev:' .. evid)
      if string.find(due[2 * i], '.', 1, true) then
        local ca = field(ev, 'ca')
        if ca and listed(id, place, field(ev, 'nd'), field(ev, 'dlvs')) then
          h = {'id', id, 'ev', evid, 'dest', dest, 'st', 'pending', 'n', '0',
            'ca', ca, 'due', ca, 'ua', ca, 'tok', tok, 'lu', lu, 'od', due[2 * i]}
          local n = nd(ev)
          if n then
            h[#h + 1] = 'nd'
            h[#h + 1] = n
          end
          redis.call('HSET', dk, unpack(h))
        end
      else
        local cur = redis.call('HGETALL', dk)
        if #cur > 0 then
          local own = field(cur, 'ev')
          if own and own ~= evid then -- defensive: derived ids are their event's
            evid = own
            ev = redis.call('HGETALL', P .. 'ev:' .. evid)
          end
          h = hold(dk, cur, tok, ev, due[2 * i])
        end
      end
    else
      local cur = redis.call('HGETALL', dk)
      evid = field(cur, 'ev')
      if evid then
        ev = redis.call('HGETALL', P .. 'ev:' .. evid)
        h = hold(dk, cur, tok, ev, due[2 * i])
      end
    end
    if not h then
      -- Defensive: never hand out a queue entry without its delivery.
      redis.call('ZREM', q, id)
    else
      moved[#moved + 1] = lu
      moved[#moved + 1] = id
      out[#out + 1] = {h, ev}
    end
  end
  -- One ZADD per 500 leased entries (unpack's stack is bounded): they all
  -- move to now+lease.
  for j = 1, #moved, 1000 do
    redis.call('ZADD', q, unpack(moved, j, math.min(j + 999, #moved)))
    redis.call('ZADD', lz, unpack(moved, j, math.min(j + 999, #moved)))
  end
end

for j, pt in ipairs(parts) do
  if take[j] > 0 then
    P = pt[1]
    q, lz = P .. 'q:' .. dest, P .. 'lz:' .. dest
    leaseIn(take[j], pt[2], dues[j])
  end
end
return out
