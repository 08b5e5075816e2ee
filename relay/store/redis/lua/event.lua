-- event: read an event with its deliveries and their attempt logs in one
-- consistent snapshot.
-- ARGV: prefix, event id.
-- Returns {} when missing, else {event fields, d1 fields, d1 attempts, ...}.
local evk = P .. 'ev:' .. ARGV[2]
local ev = redis.call('HGETALL', evk)
if #ev == 0 then return {} end
local out = {ev}
for d in string.gmatch(redis.call('HGET', evk, 'dlvs') or '', '%S+') do
  out[#out + 1] = redis.call('HGETALL', P .. 'dlv:' .. d)
  out[#out + 1] = redis.call('LRANGE', P .. 'att:' .. d, 0, -1)
end
return out
