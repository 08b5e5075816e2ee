package redis

import (
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/relaygw/relay/relay/store"
)

// Lease hands out up to n due deliveries of dest, oldest due first, each with
// its event, from every partition: no partition is starved and the order
// holds across them. That is one script call with one partition, and with
// several on one Redis, where a script may touch them all. On a cluster it
// first reads the due members of every partition's queue (one pipeline, one
// round trip per master), then leases from each partition as many as it
// holds of the n oldest (another).
func (s *Store) Lease(ctx context.Context, dest string, n int, lease time.Duration) ([]store.Delivery, error) {
	op := "lease " + dest
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("redis: %s: %w", op, err)
	}
	if n <= 0 {
		return nil, nil
	}
	ms := max(lease.Milliseconds(), 1)
	if len(s.parts) == 1 {
		calls := []partCall{s.leaseCall(s.parts[0], dest, n, ms)}
		s.runEach(ctx, s.sc.lease, calls)
		return s.leased(op, calls, false)
	}
	if s.spans {
		// One Redis: one script chooses and leases across the partitions.
		random := rand.Text()
		c := partCall{pt: s.parts[0], args: make([]any, 0, 5+2*len(s.parts))}
		c.args = append(c.args, dest, n, ms, "")
		for _, pt := range s.parts {
			c.args = append(c.args, pt.prefix, s.tokenBase(pt, random))
		}
		calls := []partCall{c}
		s.runEach(ctx, s.sc.lease, calls)
		return s.leased(op, calls, true)
	}
	// A plain read of every partition's lowest members: the due ones come
	// first, before those leased (scored by their expiry) and those due
	// later. "Now" is a server's TIME, read in the same round trip; the
	// lease scripts then decide by their own server's clock, so a skew only
	// makes the choice a little less exact.
	if err := s.ready(ctx); err != nil {
		s.wrote(err, 1)
		return nil, s.fail(op, err)
	}
	pipe := s.rdb.Pipeline()
	clock := pipe.Time(ctx)
	peeks := make([]*goredis.ZSliceCmd, len(s.parts))
	for i, pt := range s.parts {
		peeks[i] = pipe.ZRangeByScoreWithScores(ctx, pt.prefix+"q:"+dest, &goredis.ZRangeBy{Min: "-inf", Max: "+inf", Count: int64(n)})
	}
	_, _ = pipe.Exec(ctx)
	now, err := clock.Result()
	if err != nil {
		now = s.clock.Now()
	}
	nowMS := float64(now.UnixMilli())
	var all []due
	var down error
	for i, c := range peeks {
		zs, err := c.Result()
		if err != nil {
			// Its master may be down: lease from the others.
			down = err
			continue
		}
		for _, z := range zs {
			if z.Score > nowMS {
				break
			}
			all = append(all, due{z.Score, text(z.Member), i})
		}
	}
	if len(all) == 0 {
		if down != nil {
			s.wrote(down, 1)
			return nil, s.fail(op, down)
		}
		return nil, nil
	}
	slices.SortFunc(all, due.cmp)
	want := make([]int, len(s.parts))
	for _, d := range all[:min(n, len(all))] {
		want[d.p]++
	}
	var calls []partCall
	for p, k := range want {
		if k > 0 {
			calls = append(calls, s.leaseCall(s.parts[p], dest, k, ms))
		}
	}
	s.runEach(ctx, s.sc.lease, calls)
	return s.leased(op, calls, len(calls) > 1)
}

// due is a delivery in a queue: its score, id and partition. Dues sort as
// a queue's members do, by score, then id.
type due struct {
	score float64
	id    string
	p     int
}

func (a due) cmp(b due) int {
	if c := cmp.Compare(a.score, b.score); c != 0 {
		return c
	}
	return strings.Compare(a.id, b.id)
}

// leaseCall is the lease script's call in partition pt.
func (s *Store) leaseCall(pt *part, dest string, n int, ms int64) partCall {
	// One random base per call; the script numbers the tokens under it.
	return partCall{pt: pt, args: []any{dest, n, ms, s.tokenBase(pt, rand.Text())}}
}

// leased decodes the replies of lease calls, with merge in the order of the
// due times the deliveries had. It fails only when every call failed: a
// partition whose master is down leaves the others' deliveries to hand out.
func (s *Store) leased(op string, calls []partCall, merge bool) ([]store.Delivery, error) {
	var out []store.Delivery
	var dues []due // the merge's keys, with several calls
	var failed error
	ok := 0
	for _, c := range calls {
		if c.err != nil {
			// Only a refusal counts: a lease that found nothing due
			// wrote nothing, so its success says nothing about writes.
			s.wrote(c.err, 1)
			failed = c.err
			continue
		}
		ok++
		arr, err := array(c.reply)
		if err != nil {
			return nil, fmt.Errorf("redis: %s: %w", op, err)
		}
		for _, item := range arr {
			d, od, err := leasedFrom(item)
			if err != nil {
				return nil, fmt.Errorf("redis: %s: %w", op, err)
			}
			out = append(out, d)
			if merge {
				dues = append(dues, due{score: od, id: d.ID})
			}
		}
	}
	if ok == 0 && failed != nil {
		return nil, s.fail(op, failed)
	}
	if merge {
		idx := make([]int, len(out))
		for i := range idx {
			idx[i] = i
		}
		slices.SortStableFunc(idx, func(a, b int) int { return dues[a].cmp(dues[b]) })
		sorted := make([]store.Delivery, len(out))
		for i, j := range idx {
			sorted[i] = out[j]
		}
		out = sorted
	}
	if out == nil {
		out = []store.Delivery{}
	}
	return out, nil
}

// leasedFrom decodes one {delivery fields, event fields} pair of the lease
// script, and the queue score the delivery had before ("od").
func leasedFrom(item any) (store.Delivery, float64, error) {
	pair, err := array(item)
	if err != nil || len(pair) != 2 {
		return store.Delivery{}, 0, fmt.Errorf("bad lease item %v: %v", item, err)
	}
	dh, err := fields(pair[0])
	if err != nil {
		return store.Delivery{}, 0, err
	}
	eh, err := fields(pair[1])
	if err != nil {
		return store.Delivery{}, 0, err
	}
	d := deliveryFrom(dh)
	d.Lease = dh["tok"]
	ev, err := eventFrom(eh)
	if err != nil {
		return store.Delivery{}, 0, err
	}
	d.Event = &ev
	od, _ := strconv.ParseFloat(dh["od"], 64)
	return d, od, nil
}

// ExtendLease pushes a held lease's expiry to now+lease.
func (s *Store) ExtendLease(ctx context.Context, d store.Delivery, lease time.Duration) error {
	return s.held(ctx, "extend lease", d, s.sc.extend, max(lease.Milliseconds(), 1))
}

// Release gives a leased delivery back, due at due, without an attempt.
func (s *Store) Release(ctx context.Context, d store.Delivery, due time.Time) error {
	due = s.dueOrNow(due)
	return s.held(ctx, "release", d, s.sc.release, millis(due), nanos(due))
}

// held runs a script that acts on a held lease, in the partition its token
// names, and maps its status code.
//
// go-redis retries a command whose reply was lost; if the first run did
// finish, the retry finds the lease gone and this returns ErrLeaseLost for
// an outcome that was in fact recorded. Callers treat ErrLeaseLost as "not
// mine any more", which is safe either way.
func (s *Store) held(ctx context.Context, op string, d store.Delivery, sc *goredis.Script, args ...any) error {
	what := op + " " + d.ID
	if err := s.check(); err != nil {
		return fmt.Errorf("redis: %s: %w", what, err)
	}
	if d.Lease == "" {
		return fmt.Errorf("redis: %s: no lease token: %w", what, store.ErrLeaseLost)
	}
	pt := s.tokenPart(d.Lease)
	if pt == nil {
		return fmt.Errorf("redis: %s: not a lease token of this store: %w", what, store.ErrLeaseLost)
	}
	reply, err := s.run(ctx, pt, sc, append([]any{d.ID, d.Lease}, args...)...)
	if err != nil {
		s.wrote(err, 1)
		return s.fail(op, err) // no id: an outage fails every delivery alike
	}
	op = what
	return statusErr(op, reply)
}

// statusErr maps a script's status code to nil or a sentinel error.
func statusErr(op string, reply any) error {
	code, err := integer(reply)
	switch {
	case err != nil:
		return fmt.Errorf("redis: %s: %w", op, err)
	case code == codeOK:
		return nil
	case code == codeLost:
		return fmt.Errorf("redis: %s: %w", op, store.ErrLeaseLost)
	case code == codeMissing:
		return fmt.Errorf("redis: %s: %w", op, store.ErrNotFound)
	default:
		return fmt.Errorf("redis: %s: unexpected status %d", op, code)
	}
}

// dueOrNow is due, or the Store's clock's now for a zero due.
func (s *Store) dueOrNow(due time.Time) time.Time {
	if due.IsZero() {
		return s.clock.Now()
	}
	return due
}
