-- list: one page of a sequence-scored set (DLQ or parked) with the hashes
-- of its members.
-- ARGV: prefix, set key suffix, member hash key prefix, cursor ('' = start),
--       limit. Returns {next cursor or '', fields of member 1, ...}.
local set = P .. ARGV[2]
local min = '-inf'
if ARGV[4] ~= '' then min = '(' .. ARGV[4] end
local limit = tonumber(ARGV[5])
local page = redis.call('ZRANGEBYSCORE', set, min, '+inf', 'WITHSCORES', 'LIMIT', 0, limit + 1)
local out = {''}
local count = math.min(limit, #page / 2)
for i = 1, count do
  local h = redis.call('HGETALL', P .. ARGV[3] .. page[2 * i - 1])
  if #h > 0 then out[#out + 1] = h end
end
-- The score as an integer: Redis may write a large one with an exponent.
if #page / 2 > limit then out[1] = string.format('%d', tonumber(page[2 * limit])) end
return out
