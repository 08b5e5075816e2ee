package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/relaygw/relay/relay/store"
)

// DeleteDLQ takes a dead delivery out of the DLQ for good; it stays in its
// event's record as discarded.
func (s *Store) DeleteDLQ(ctx context.Context, id string) error {
	return s.inDLQ(ctx, "delete dlq "+id, id, s.sc.deleteDLQ)
}

// findBatch is how many index entries FindEvents reads per round trip.
const findBatch = 200

// eventFields are the event hash fields a search reads: the packed fields
// (body included, see pack.go) and the others.
var eventFields = []string{"e", "dests", "parked", "dlvs", "ca", "nd"}

// FindEvents walks the evidx index newest first from the cursor, the last
// id examined. A search is a read, not a step that must be atomic, so it
// pipelines plain commands instead of running a script that would hold the
// server for the whole batch.
func (s *Store) FindEvents(ctx context.Context, q store.EventQuery, p store.Page) ([]store.EventRecord, string, error) {
	const op = "find events"
	if err := s.check(); err != nil {
		return nil, "", fmt.Errorf("redis: %s: %w", op, err)
	}
	if err := s.ready(ctx); err != nil {
		return nil, "", s.fail(op, err)
	}
	limit := p.Limit
	if limit <= 0 {
		limit = store.DefaultPageLimit
	}
	items := []store.EventRecord{}
	top, examined := "+", 0
	if p.Cursor != "" {
		top = "(" + p.Cursor
	}
	for examined < store.FindScanLimit {
		want := min(findBatch, store.FindScanLimit-examined)
		ids, pts, err := s.index(ctx, top, want)
		if err != nil {
			return nil, "", s.fail(op, err)
		}
		if len(ids) == 0 {
			return items, "", nil
		}
		evs, err := s.findEvents(ctx, ids, pts, q)
		if err != nil {
			return nil, "", err
		}
		for i, id := range ids {
			if q.Exhausted(id) {
				return items, "", nil
			}
			examined++
			if rec, ok := evs[id]; ok && q.Matches(rec) {
				items = append(items, rec)
			}
			if len(items) == limit || examined == store.FindScanLimit {
				if i == len(ids)-1 && len(ids) < want {
					return items, "", nil // the index ends here
				}
				return items, id, nil
			}
		}
		top = "(" + ids[len(ids)-1]
	}
	return items, strings.TrimPrefix(top, "("), nil
}

// index reads up to count ids of the search index below top, newest first:
// with several partitions the newest of all their indexes, each id with
// its partition.
func (s *Store) index(ctx context.Context, top string, count int) ([]string, []*part, error) {
	by := &goredis.ZRangeBy{Max: top, Min: "-", Count: int64(count)}
	pipe := s.rdb.Pipeline()
	cmds := make([]*goredis.StringSliceCmd, len(s.parts))
	for i, pt := range s.parts {
		cmds[i] = pipe.ZRevRangeByLex(ctx, pt.prefix+"evidx", by)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, nil, err
	}
	type entry struct {
		id string
		pt *part
	}
	var all []entry
	for i, c := range cmds {
		for _, id := range c.Val() {
			all = append(all, entry{id, s.parts[i]})
		}
	}
	if len(s.parts) > 1 {
		slices.SortFunc(all, func(a, b entry) int { return strings.Compare(b.id, a.id) })
		all = all[:min(count, len(all))]
	}
	ids, pts := make([]string, len(all)), make([]*part, len(all))
	for i, e := range all {
		ids[i], pts[i] = e.id, e.pt
	}
	return ids, pts, nil
}

// findEvents reads the events ids (no bodies) and, for those whose own
// fields match q, their deliveries. Index entries of expired events are
// dropped on the way.
func (s *Store) findEvents(ctx context.Context, ids []string, pts []*part, q store.EventQuery) (map[string]store.EventRecord, error) {
	const op = "find events"
	pipe := s.rdb.Pipeline()
	evCmds := make([]*goredis.SliceCmd, len(ids))
	for i, id := range ids {
		evCmds[i] = pipe.HMGet(ctx, pts[i].prefix+"ev:"+id, eventFields...)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, s.fail(op, err)
	}
	gone := map[*part][]any{}
	recs := make(map[string]store.EventRecord, len(ids))
	dlvCmds := map[string][]*goredis.MapStringStringCmd{}
	evHashes := map[string]map[string]string{}
	pipe = s.rdb.Pipeline()
	for i, id := range ids {
		h := hashOf(eventFields, evCmds[i].Val())
		if h["e"] == "" {
			gone[pts[i]] = append(gone[pts[i]], id)
			continue
		}
		ev, err := eventFrom(h)
		if err != nil {
			return nil, fmt.Errorf("redis: %s: event %s: %w", op, id, err)
		}
		ev.Body = nil // read with the packed fields, not returned by a search
		rec := store.EventRecord{Event: ev}
		if !(store.EventQuery{WebhookID: q.WebhookID, DedupeKey: q.DedupeKey, Since: q.Since, Until: q.Until}).Matches(rec) {
			continue
		}
		recs[id] = rec
		evHashes[id] = h
		for _, d := range deliveryIDs(h) {
			dlvCmds[id] = append(dlvCmds[id], pipe.HGetAll(ctx, pts[i].prefix+"dlv:"+d))
		}
	}
	for pt, ids := range gone {
		pipe.ZRem(ctx, pt.prefix+"evidx", ids...)
		pipe.ZRem(ctx, pt.prefix+"evexp", ids...)
	}
	if pipe.Len() > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, s.fail(op, err)
		}
	}
	for id, cmds := range dlvCmds {
		rec := recs[id]
		rec.Deliveries = make([]store.DeliveryRecord, 0, len(cmds))
		ids := deliveryIDs(evHashes[id]) // the order of cmds
		for k, c := range cmds {
			if h := c.Val(); len(h) > 0 {
				rec.Deliveries = append(rec.Deliveries, store.DeliveryRecord{Delivery: deliveryFrom(h)})
			} else if d, ok := implicitDelivery(evHashes[id], rec.Event, ids[k]); ok {
				rec.Deliveries = append(rec.Deliveries, store.DeliveryRecord{Delivery: d})
			}
		}
		recs[id] = rec
	}
	return recs, nil
}

// hashOf pairs an HMGET reply with the field names asked for.
func hashOf(names []string, vals []any) map[string]string {
	h := make(map[string]string, len(names))
	for i, v := range vals {
		if i < len(names) {
			h[names[i]] = text(v)
		}
	}
	return h
}
