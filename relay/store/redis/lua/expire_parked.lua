-- expire_parked: delete up to a limit of the parked events created before
-- a cutoff, oldest first, with their search index entries.
-- ARGV: prefix, cutoff (Unix ns, decimal), limit.
-- Returns {deleted, more}: more is 1 when the limit stopped the walk.
local cutoff, limit = ARGV[2], tonumber(ARGV[3])
-- Unix ns do not fit a Lua double exactly; decimal strings compare by
-- length, then as text.
local function before(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end
local ids = redis.call('ZRANGE', P .. 'parked', 0, limit - 1)
local n, more = 0, 0
for i, id in ipairs(ids) do
  local evk = P .. 'ev:' .. id
  local ca = redis.call('HGET', evk, 'ca')
  -- The set is in accept order, so the first event too young ends the walk.
  if ca and not before(ca, cutoff) then break end
  redis.call('ZREM', P .. 'parked', id)
  redis.call('HINCRBY', P .. 'depth', 'parked', -1)
  if ca then
    redis.call('DEL', evk)
    redis.call('ZREM', P .. 'evidx', id)
    n = n + 1
  end
  if i == limit then more = 1 end
end
return {n, more}
