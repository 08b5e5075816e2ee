-- event: read an event with its deliveries and their attempt logs in one
-- consistent snapshot.
-- ARGV: prefix, event id.
-- Returns {} when missing, else {event fields, d1 fields, d1 attempts, ...},
-- the deliveries in the order of deliveryIDs (decode.go).
local ev = redis.call('HGETALL', P .. 'ev:' .. ARGV[2])
if #ev == 0 then return {} end
local out = {ev}
for _, d in ipairs(dlvids(P .. 'ev:' .. ARGV[2], ARGV[2])) do
  out[#out + 1] = redis.call('HGETALL', P .. 'dlv:' .. d)
  out[#out + 1] = redis.call('LRANGE', P .. 'att:' .. d, 0, -1)
end
return out
