package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/relaygw/relay/relay/store"
)

// Event returns an event with its deliveries and their attempt logs, read
// in one consistent snapshot.
func (s *Store) Event(ctx context.Context, id string) (store.EventRecord, error) {
	op := "event " + id
	var arr []any
	err := s.lookup(s.partOf(id), func(pt *part) error {
		reply, err := s.run(ctx, pt, s.sc.event, id)
		if err != nil {
			return s.fail(op, err)
		}
		if arr, err = array(reply); err != nil {
			return fmt.Errorf("redis: %s: %w", op, err)
		}
		if len(arr) == 0 {
			return errNotHere
		}
		return nil
	})
	if errors.Is(err, errNotHere) {
		return store.EventRecord{}, fmt.Errorf("redis: %s: %w", op, store.ErrNotFound)
	}
	if err != nil {
		return store.EventRecord{}, err
	}
	rec, err := recordFrom(arr)
	if err != nil {
		return store.EventRecord{}, fmt.Errorf("redis: %s: %w", op, err)
	}
	return rec, nil
}

// recordFrom decodes the event script's {event, d1, d1 attempts, ...}.
func recordFrom(arr []any) (store.EventRecord, error) {
	eh, err := fields(arr[0])
	if err != nil {
		return store.EventRecord{}, err
	}
	ev, err := eventFrom(eh)
	if err != nil {
		return store.EventRecord{}, err
	}
	rec := store.EventRecord{Event: ev, Deliveries: []store.DeliveryRecord{}}
	ids := deliveryIDs(eh) // the script's order
	for i := 1; i+1 < len(arr); i += 2 {
		dh, err := fields(arr[i])
		if err != nil {
			return store.EventRecord{}, err
		}
		if len(dh) == 0 {
			if k := (i - 1) / 2; k < len(ids) {
				if d, ok := implicitDelivery(eh, ev, ids[k]); ok {
					rec.Deliveries = append(rec.Deliveries, store.DeliveryRecord{Delivery: d, AttemptLog: []store.Attempt{}})
				}
			}
			continue // else expired ahead of its event: not expected, not fatal
		}
		log, err := attemptsFrom(arr[i+1], dh["la"])
		if err != nil {
			return store.EventRecord{}, fmt.Errorf("delivery %s: %w", dh["id"], err)
		}
		rec.Deliveries = append(rec.Deliveries, store.DeliveryRecord{Delivery: deliveryFrom(dh), AttemptLog: log})
	}
	return rec, nil
}

// ListDLQ lists dead deliveries in the order they died; dest "" means all.
func (s *Store) ListDLQ(ctx context.Context, dest string, p store.Page) ([]store.Delivery, string, error) {
	set := "dlq"
	if dest != "" {
		set = "dlq:" + dest
	}
	hashes, next, err := s.list(ctx, "list dlq", set, "dlv:", p)
	if err != nil {
		return nil, "", err
	}
	items := make([]store.Delivery, 0, len(hashes))
	for _, h := range hashes {
		items = append(items, deliveryFrom(h))
	}
	return items, next, nil
}

// ReplayDLQ moves one dead delivery back into its queue, due now, with its
// attempt count and age reset.
func (s *Store) ReplayDLQ(ctx context.Context, id string) error {
	return s.inDLQ(ctx, "replay dlq "+id, id, s.sc.replayDLQ)
}

// inDLQ runs a script that acts on the dead delivery id, in the partition
// that holds it, with the retention as its last argument.
func (s *Store) inDLQ(ctx context.Context, op, id string, sc *goredis.Script) error {
	err := s.lookup(s.deliveryPart(id), func(pt *part) error {
		reply, err := s.run(ctx, pt, sc, id, s.retention.Milliseconds())
		if err != nil {
			return s.fail(op, err)
		}
		if code, _ := integer(reply); code == codeMissing {
			return errNotHere
		}
		return statusErr(op, reply)
	})
	if errors.Is(err, errNotHere) {
		return fmt.Errorf("redis: %s: %w", op, store.ErrNotFound)
	}
	return err
}

// Depths reads the counters that the scripts keep, one HGETALL.
func (s *Store) Depths(ctx context.Context) (store.Depths, error) {
	if err := s.check(); err != nil {
		return store.Depths{}, fmt.Errorf("redis: depths: %w", err)
	}
	if err := s.ready(ctx); err != nil {
		return store.Depths{}, s.fail("depths", err)
	}
	// Each partition counts its own; the sums are the store's.
	pipe := s.rdb.Pipeline()
	cmds := make([]*goredis.MapStringStringCmd, len(s.parts))
	for i, pt := range s.parts {
		cmds[i] = pipe.HGetAll(ctx, pt.prefix+"depth")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return store.Depths{}, s.fail("depths", err)
	}
	d := store.Depths{Queued: map[string]int{}, Dead: map[string]int{}}
	for _, c := range cmds {
		for k, v := range c.Val() {
			n, err := strconv.Atoi(v)
			if err != nil {
				continue
			}
			switch {
			case k == "parked":
				d.Parked += n
			case strings.HasPrefix(k, "q:"):
				d.Queued[k[2:]] += n
			case strings.HasPrefix(k, "d:"):
				d.Dead[k[2:]] += n
			}
		}
	}
	for _, m := range []map[string]int{d.Queued, d.Dead} {
		for k, n := range m {
			if n == 0 {
				delete(m, k)
			}
		}
	}
	return d, nil
}

// Delivery returns one delivery without its attempt log: one HGETALL.
func (s *Store) Delivery(ctx context.Context, id string) (store.Delivery, error) {
	op := "delivery " + id
	if err := s.check(); err != nil {
		return store.Delivery{}, fmt.Errorf("redis: %s: %w", op, err)
	}
	if err := s.ready(ctx); err != nil {
		return store.Delivery{}, s.fail(op, err)
	}
	var d store.Delivery
	err := s.lookup(s.deliveryPart(id), func(pt *part) (err error) {
		d, err = s.delivery(ctx, op, pt, id)
		return err
	})
	if errors.Is(err, errNotHere) {
		return store.Delivery{}, fmt.Errorf("redis: %s: %w", op, store.ErrNotFound)
	}
	return d, err
}

// delivery reads the delivery id in partition pt, or errNotHere.
func (s *Store) delivery(ctx context.Context, op string, pt *part, id string) (store.Delivery, error) {
	h, err := s.rdb.HGetAll(ctx, pt.prefix+"dlv:"+id).Result()
	if err != nil {
		return store.Delivery{}, s.fail(op, err)
	}
	if len(h) > 0 {
		return deliveryFrom(h), nil
	}
	if cut := strings.LastIndexByte(id, '_'); cut > 4 && strings.HasPrefix(id, "dlv_") {
		evh, err := s.rdb.HGetAll(ctx, pt.prefix+"ev:evt_"+id[4:cut]).Result()
		if err != nil {
			return store.Delivery{}, s.fail(op, err)
		}
		if len(evh) > 0 {
			ev, err := eventFrom(evh)
			if err != nil {
				return store.Delivery{}, fmt.Errorf("redis: %s: %w", op, err)
			}
			if d, ok := implicitDelivery(evh, ev, id); ok {
				return d, nil
			}
		}
	}
	return store.Delivery{}, errNotHere
}
