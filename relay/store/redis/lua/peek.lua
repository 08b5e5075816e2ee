-- peek: the members and scores of up to n due deliveries of one
-- destination, oldest due first, for a lease over several partitions
-- (queue.go) to choose from. Reads only.
-- ARGV: prefix, destination, n. Returns {member, score, ...}.
return redis.call('ZRANGEBYSCORE', P .. 'q:' .. ARGV[2], '-inf', now(), 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
