package redis

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/relaygw/relay/relay/store"
)

// A partition is a complete keyspace of the layout in doc.go under a prefix
// of its own: with one partition the store's prefix, with more the prefix
// followed by the partition's hash tag, "{p}:" (see partPrefix). An event,
// its dedupe claim and its deliveries live in one partition, so every script
// touches the keys of one partition only, which on Redis Cluster means one
// hash slot.
type part struct {
	n      int
	prefix string   // ARGV[1] of its scripts
	route  []string // a cluster's key for its scripts: the prefix, so its slot
	// Accepts and outcomes share script calls per partition (batch.go).
	accepts  batcher[*acceptReq]
	outcomes batcher[*outcomeReq]
}

// sender is the partition whose batchers send the calls for partition pt:
// pt itself, or on one Redis with several partitions the first, whose
// calls span them all.
func (s *Store) sender(pt *part) *part {
	if s.spans {
		return s.parts[0]
	}
	return pt
}

// partPrefix is the key prefix of partition p of n under prefix.
func partPrefix(prefix string, p, n int) string {
	if n == 1 {
		return prefix
	}
	return prefix + "{" + strconv.Itoa(p) + "}:"
}

// partOf is the partition of an event: FNV-1a of its dedupe claim key, or
// of its id when it has none, mod the number of partitions. It must never
// change: stored events are found where it put them.
func (s *Store) partOf(key string) int {
	if len(s.parts) == 1 {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(len(s.parts)))
}

// tokenBase is the base of the lease tokens a lease call in partition pt
// hands out (the script numbers them under it): with several partitions it
// starts with the partition's number, so that an outcome finds the
// partition of its delivery from the token alone.
func (s *Store) tokenBase(pt *part, random string) string {
	if len(s.parts) == 1 {
		return random
	}
	return strconv.Itoa(pt.n) + "-" + random
}

// tokenPart is the partition a lease token was handed out in, or nil for a
// token this store never made (so no live lease).
func (s *Store) tokenPart(tok string) *part {
	if len(s.parts) == 1 {
		return s.parts[0]
	}
	num, _, ok := strings.Cut(tok, "-")
	p, err := strconv.Atoi(num)
	if !ok || err != nil || p < 0 || p >= len(s.parts) || strconv.Itoa(p) != num {
		return nil
	}
	return s.parts[p]
}

// deliveryPart is the partition to look in first for a delivery: that of
// its event when its id is derived from the event's (accept.go), else the
// first. An event deduped by a claim key lives in that key's partition, so
// a lookup by id goes on to the others when the first has nothing.
func (s *Store) deliveryPart(id string) int {
	if cut := strings.LastIndexByte(id, '_'); cut > 4 && strings.HasPrefix(id, "dlv_") {
		return s.partOf("evt_" + id[4:cut])
	}
	return 0
}

// errNotHere is what a lookup's step answers when the partition it looked
// in does not hold what it looks for.
var errNotHere = errors.New("not in this partition")

// lookup runs fn on the partition first and then on the others, in order,
// until one answers anything but errNotHere, and returns that answer. When
// none holds it, it returns errNotHere, or the error of a partition that
// could not answer (its master down): the thing may be there.
func (s *Store) lookup(first int, fn func(pt *part) error) error {
	var down error
	for i := range s.parts {
		err := fn(s.parts[(first+i)%len(s.parts)])
		switch {
		case errors.Is(err, errNotHere):
		case err != nil && unavailable(err) && len(s.parts) > 1:
			if down == nil {
				down = err
			}
		default:
			return err
		}
	}
	if down != nil {
		return down
	}
	return errNotHere
}

// partCall is one script call of runEach.
type partCall struct {
	pt    *part
	args  []any // after the prefix
	reply any
	err   error
}

// runEach runs sc once per call, each in its partition, in one pipeline:
// one round trip on a single Redis, one per master (in parallel) on a
// cluster. Each call gets its own reply or error, so a partition whose
// master is down fails its calls only.
func (s *Store) runEach(ctx context.Context, sc *goredis.Script, calls []partCall) {
	err := s.check()
	if err == nil {
		err = s.ready(ctx)
	}
	if err != nil {
		for i := range calls {
			calls[i].err = err
		}
		return
	}
	argv := func(c *partCall) []any { return append([]any{c.pt.prefix}, c.args...) }
	if len(calls) == 1 {
		c := &calls[0]
		c.reply, c.err = sc.Run(ctx, s.rdb, c.pt.route, argv(c)...).Result()
		return
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*goredis.Cmd, len(calls))
	for i := range calls {
		cmds[i] = sc.EvalSha(ctx, pipe, calls[i].pt.route, argv(&calls[i])...)
	}
	_, _ = pipe.Exec(ctx)
	for i, cmd := range cmds {
		c := &calls[i]
		c.reply, c.err = cmd.Result()
		if c.err != nil && goredis.HasErrorPrefix(c.err, "NOSCRIPT") {
			// That server lost its script cache (restarted, or a replica
			// promoted): Run loads it again.
			c.reply, c.err = sc.Run(ctx, s.rdb, c.pt.route, argv(c)...).Result()
		}
	}
}

// partCursor reads a page cursor of a list merged from several partitions:
// the score and partition of the last item handed out, "score-p".
func (s *Store) partCursor(cursor string) (score float64, p int, err error) {
	num, ps, ok := strings.Cut(cursor, "-")
	if ok {
		score, err = strconv.ParseFloat(num, 64)
		if err == nil {
			p, err = strconv.Atoi(ps)
		}
	}
	if !ok || err != nil || p < 0 || p >= len(s.parts) || score < 0 {
		return 0, 0, fmt.Errorf("%w %q", errBadCursor, cursor)
	}
	return score, p, nil
}

// listParts is list (accept.go) over several partitions: each set is
// ordered by its score, and the merged list by score, then partition. It
// reads the first limit+1 members of every partition's set after the
// cursor, keeps the first limit of them all, then reads their hashes.
func (s *Store) listParts(ctx context.Context, op, set, hashPrefix string, p store.Page) ([]map[string]string, string, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = store.DefaultPageLimit
	}
	var after float64
	from := -1
	if p.Cursor != "" {
		var err error
		if after, from, err = s.partCursor(p.Cursor); err != nil {
			return nil, "", fmt.Errorf("redis: %s: %w", op, err)
		}
	}
	if err := s.check(); err != nil {
		return nil, "", fmt.Errorf("redis: %s: %w", op, err)
	}
	if err := s.ready(ctx); err != nil {
		return nil, "", s.fail(op, err)
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*goredis.ZSliceCmd, len(s.parts))
	for i, pt := range s.parts {
		lo := "-inf"
		if from >= 0 {
			// Members of a later partition with the cursor's score come
			// after it; those of this one and earlier ones were handed out.
			lo = strconv.FormatFloat(after, 'f', -1, 64)
			if i <= from {
				lo = "(" + lo
			}
		}
		cmds[i] = pipe.ZRangeByScoreWithScores(ctx, pt.prefix+set, &goredis.ZRangeBy{Min: lo, Max: "+inf", Count: int64(limit + 1)})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, "", s.fail(op, err)
	}
	type entry struct {
		score float64
		p     int
		id    string
	}
	var all []entry
	for i, c := range cmds {
		for _, z := range c.Val() {
			all = append(all, entry{z.Score, i, text(z.Member)})
		}
	}
	slices.SortFunc(all, func(a, b entry) int {
		if c := cmp.Compare(a.score, b.score); c != 0 {
			return c
		}
		return a.p - b.p
	})
	next := ""
	if len(all) > limit {
		all = all[:limit]
		last := all[limit-1]
		next = strconv.FormatFloat(last.score, 'f', -1, 64) + "-" + strconv.Itoa(last.p)
	}
	pipe = s.rdb.Pipeline()
	hcmds := make([]*goredis.MapStringStringCmd, len(all))
	for i, e := range all {
		hcmds[i] = pipe.HGetAll(ctx, s.parts[e.p].prefix+hashPrefix+e.id)
	}
	if len(all) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, "", s.fail(op, err)
		}
	}
	hashes := make([]map[string]string, 0, len(all))
	for _, c := range hcmds {
		if h := c.Val(); len(h) > 0 {
			hashes = append(hashes, h)
		}
	}
	return hashes, next, nil
}
