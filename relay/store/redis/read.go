package redis

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/relaygw/relay/relay/store"
)

// Event returns an event with its deliveries and their attempt logs, read
// in one consistent snapshot.
func (s *Store) Event(ctx context.Context, id string) (store.EventRecord, error) {
	op := "event " + id
	reply, err := s.run(ctx, s.sc.event, id)
	if err != nil {
		return store.EventRecord{}, s.fail(op, err)
	}
	arr, err := array(reply)
	if err != nil {
		return store.EventRecord{}, fmt.Errorf("redis: %s: %w", op, err)
	}
	if len(arr) == 0 {
		return store.EventRecord{}, fmt.Errorf("redis: %s: %w", op, store.ErrNotFound)
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
	op := "replay dlq " + id
	reply, err := s.run(ctx, s.sc.replayDLQ, id)
	if err != nil {
		return s.fail(op, err)
	}
	return statusErr(op, reply)
}

// Depths reads the counters that the scripts keep, one HGETALL.
func (s *Store) Depths(ctx context.Context) (store.Depths, error) {
	if err := s.check(); err != nil {
		return store.Depths{}, fmt.Errorf("redis: depths: %w", err)
	}
	if err := s.ready(ctx); err != nil {
		return store.Depths{}, s.fail("depths", err)
	}
	h, err := s.rdb.HGetAll(ctx, s.prefix+"depth").Result()
	if err != nil {
		return store.Depths{}, s.fail("depths", err)
	}
	d := store.Depths{Queued: map[string]int{}, Dead: map[string]int{}}
	for k, v := range h {
		n, err := strconv.Atoi(v)
		if err != nil || n == 0 {
			continue
		}
		switch {
		case k == "parked":
			d.Parked = n
		case strings.HasPrefix(k, "q:"):
			d.Queued[k[2:]] = n
		case strings.HasPrefix(k, "d:"):
			d.Dead[k[2:]] = n
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
	h, err := s.rdb.HGetAll(ctx, s.prefix+"dlv:"+id).Result()
	if err != nil {
		return store.Delivery{}, s.fail(op, err)
	}
	if len(h) > 0 {
		return deliveryFrom(h), nil
	}
	// Accept stores no hash for a delivery until its first lease; its
	// state then follows from its event's (see implicitDelivery).
	if cut := strings.LastIndexByte(id, '_'); cut > 4 && strings.HasPrefix(id, "dlv_") {
		evh, err := s.rdb.HGetAll(ctx, s.prefix+"ev:evt_"+id[4:cut]).Result()
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
	return store.Delivery{}, fmt.Errorf("redis: %s: %w", op, store.ErrNotFound)
}
