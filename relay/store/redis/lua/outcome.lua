-- outcome: record the attempts of a batch of Complete, Retry and DeadLetter
-- calls (see batch.go). Each is decided on its own, in order, as if it were
-- alone: it needs its delivery's live lease, which it ends.
-- complete: the delivery is delivered; when it was its event's last
--   unfinished delivery (its only one, or 'out' reaches 0), the event, its
--   deliveries and their attempt logs expire after the retention.
-- retry: the delivery is due again at the given time.
-- dead-letter: the delivery moves to the DLQ. The DLQ sets are scored by
--   stamps (prelude.lua), so they list in the order deliveries died and page
--   by that number exactly.
-- ARGV: prefix, retention ms, number of outcomes, then per outcome: kind
--       ('c', 'r' or 'd'), delivery id, token, attempt (attempt.go), status, error,
--       due ms and due ns ('' but for a retry); on a single Redis with
--       several partitions, then per outcome the prefix of its partition.
-- Returns one status code per outcome: 1 done, 2 lease lost, 3 missing.
local outcomeArgs = 8 -- per outcome, as outcome.go sends them
local ms, ns = now()
local ret = ARGV[2]
local expms = string.format('%d', ms + tonumber(ret))
local codes = {}
-- What many outcomes change in one key is written once at the end: per
-- destination its queue's finished and rescheduled members, its depth
-- counters and its DLQ; the DLQ, the sequence, the expiry index. A batch is
-- at most maxBatch (batch.go) outcomes, well within unpack's stack.
local count = tonumber(ARGV[3])
local spans = #ARGV > 3 + outcomeArgs * count
local groups, order = {}, {}
-- Per partition (prefix): the dead deliveries and the retired events.
local dead, exp, porder = {}, {}, {}
local a = 4
for i = 1, count do
  -- The prelude's functions build keys from P: it names the partition.
  if spans then P = ARGV[3 + outcomeArgs * count + i] end
  if not dead[P] then
    dead[P], exp[P] = {}, {}
    porder[#porder + 1] = P
  end
  local kind, id = ARGV[a], ARGV[a + 1]
  local dk = P .. 'dlv:' .. id
  local h, code = held(dk, ARGV[a + 2], ms)
  if h then
    code = 1
    local g = groups[P .. 'q:' .. h.dest]
    if not g then
      g = {p = P, dest = h.dest, rem = {}, add = {}, dlq = {}, lz = {}, q = 0, d = 0}
      groups[P .. 'q:' .. h.dest] = g
      order[#order + 1] = g
    end
    -- The lease ends here: its entry in the lease index (see lease.lua)
    -- goes now, one command per destination, rather than be looked at
    -- when the lease would have run out.
    g.lz[#g.lz + 1] = id
    local n = string.format('%d', h.n + 1)
    -- The newest attempt goes in 'la'; the one it replaces joins the log.
    if h.la then redis.call('RPUSH', P .. 'att:' .. id, h.la) end
    local att = ARGV[a + 3]
    if kind == 'r' then
      g.add[#g.add + 1] = ARGV[a + 6]
      g.add[#g.add + 1] = id
      redis.call('HSET', dk, 'n', n, 'ls', ARGV[a + 4], 'le', ARGV[a + 5],
        'due', ARGV[a + 7], 'ua', ns, 'tok', '', 'lu', '0', 'la', att)
    elseif kind == 'c' then
      g.rem[#g.rem + 1] = id
      g.q = g.q - 1
      redis.call('HSET', dk, 'st', 'delivered', 'n', n, 'ls', ARGV[a + 4],
        'le', ARGV[a + 5], 'ua', ns, 'tok', '', 'lu', '0', 'la', att)
      -- An event's only delivery ('nd' 1) finishes it; others count down
      -- its 'out'.
      if h.nd == '1' or redis.call('HINCRBY', P .. 'ev:' .. h.ev, 'out', -1) <= 0 then
        -- No 'la' before means no attempt before, so no log list.
        local skip
        if not h.la then skip = id end
        expire(h.ev, ret, siblings(id, h.ev, h.nd), skip)
        local e = exp[P]
        e[#e + 1] = expms
        e[#e + 1] = h.ev
      end
    else
      g.rem[#g.rem + 1] = id
      g.q = g.q - 1
      g.d = g.d + 1
      local dd = dead[P]
      dd[#dd + 1] = {id, g}
      redis.call('HSET', dk, 'st', 'dead', 'n', n, 'ls', ARGV[a + 4],
        'le', ARGV[a + 5], 'ua', ns, 'tok', '', 'lu', '0', 'la', att)
    end
  end
  codes[i] = code
  a = a + outcomeArgs
end
for _, p in ipairs(porder) do
  P = p
  local dd = dead[p]
  if #dd > 0 then
    local seq = stamps(#dd)
    local all = {}
    for j, d in ipairs(dd) do
      local score = string.format('%d', seq + j)
      all[#all + 1] = score
      all[#all + 1] = d[1]
      d[2].dlq[#d[2].dlq + 1] = score
      d[2].dlq[#d[2].dlq + 1] = d[1]
    end
    redis.call('ZADD', P .. 'dlq', unpack(all))
  end
end
for _, g in ipairs(order) do
  local dest = g.dest
  P = g.p
  local q = P .. 'q:' .. dest
  if #g.rem > 0 then redis.call('ZREM', q, unpack(g.rem)) end
  redis.call('ZREM', P .. 'lz:' .. dest, unpack(g.lz))
  if #g.add > 0 then redis.call('ZADD', q, unpack(g.add)) end
  if #g.dlq > 0 then redis.call('ZADD', P .. 'dlq:' .. dest, unpack(g.dlq)) end
  if g.q ~= 0 then redis.call('HINCRBY', P .. 'depth', 'q:' .. dest, string.format('%d', g.q)) end
  if g.d ~= 0 then redis.call('HINCRBY', P .. 'depth', 'd:' .. dest, string.format('%d', g.d)) end
end
for _, p in ipairs(porder) do
  P = p
  if #exp[p] > 0 then unindex(exp[p], ms) end
end
return codes
