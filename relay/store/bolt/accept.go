package bolt

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/bbolt"

	"github.com/relaygw/relay/relay/store"
)

// empty is the value of index keys.
var empty = []byte{}

// newDelivery is a delivery encoded before it reaches the committer, so the
// single committer goroutine spends its time writing, not encoding.
type newDelivery struct {
	rec *deliveryRec
	enc []byte
}

func newDeliveries(eventID string, dests []string, now time.Time) ([]newDelivery, []string) {
	out := make([]newDelivery, len(dests))
	ids := make([]string, len(dests))
	for i, dest := range dests {
		rec := &deliveryRec{Delivery: store.Delivery{
			ID:          store.NewID("dlv_"),
			EventID:     eventID,
			Destination: dest,
			State:       store.StatePending,
			CreatedAt:   now,
			DueAt:       now,
			UpdatedAt:   now,
		}}
		out[i] = newDelivery{rec: rec, enc: encodeDelivery(rec)}
		ids[i] = rec.ID
	}
	return out, ids
}

// putNew stores new deliveries and queues them.
func putNew(b *batch, ds []newDelivery) error {
	for _, d := range ds {
		if err := b.tx.Bucket(bucketDeliveries).Put([]byte(d.rec.ID), d.enc); err != nil {
			return err
		}
		if err := enqueue(b, d.rec); err != nil {
			return err
		}
	}
	return nil
}

// enqueue adds rec to its destination's due index and counts it queued.
func enqueue(b *batch, rec *deliveryRec) error {
	q, err := b.queue(rec.Destination)
	if err != nil {
		return err
	}
	if err := q.Put(dueKey(&rec.Delivery), empty); err != nil {
		return err
	}
	b.count(queuedKey(rec.Destination), 1)
	return nil
}

// unqueue removes rec from the due index; with finished it also stops
// counting it queued.
func unqueue(b *batch, rec *deliveryRec, finished bool) error {
	q, err := b.queue(rec.Destination)
	if err != nil {
		return err
	}
	var buf [64]byte
	if err := q.remove(appendDueKey(buf[:0], &rec.Delivery)); err != nil {
		return err
	}
	if finished {
		b.count(queuedKey(rec.Destination), -1)
	}
	return nil
}

// Accept stores ev and queues one delivery per destination in one
// transaction, or reports a duplicate when the dedupe key has a live claim.
// An empty ev.ID gets a new id and a zero ReceivedAt becomes now.
func (s *Store) Accept(ctx context.Context, ev store.Event, dests []string, dedupe store.Dedupe) (store.AcceptResult, error) {
	apply, res := acceptOp(s.clock.Now(), ev, dests, dedupe)
	if err := s.submit(ctx, apply); err != nil {
		return store.AcceptResult{}, fmt.Errorf("bolt: accept: %w", err)
	}
	return *res, nil
}

// acceptOp prepares an Accept: everything that needs no transaction (ids,
// encoding) happens here, in the caller's goroutine, and the returned op
// only checks the claim and writes. res is valid once the op committed.
func acceptOp(now time.Time, ev store.Event, dests []string, dedupe store.Dedupe) (apply func(*batch) error, res *store.AcceptResult) {
	if ev.ID == "" {
		ev.ID = store.NewID("evt_")
	}
	if ev.ReceivedAt.IsZero() {
		ev.ReceivedAt = now
	}
	if ev.DedupeKey == "" {
		ev.DedupeKey = dedupe.Key
	}
	ev.Destinations = slices.Clone(dests)
	ev.Parked = len(dests) == 0
	ds, ids := newDeliveries(ev.ID, dests, now)
	evEnc := encodeEvent(&eventRec{Event: ev, DeliveryIDs: ids})

	res = new(store.AcceptResult)
	apply = func(b *batch) error {
		if dedupe.Key != "" {
			if holder, ok := liveClaim(b, dedupe.Key); ok {
				*res = store.AcceptResult{EventID: holder, Duplicate: true}
				return nil
			}
		}
		id := []byte(ev.ID)
		if b.tx.Bucket(bucketEvents).Get(id) != nil {
			return reject(fmt.Errorf("event %s already exists", ev.ID))
		}
		if err := b.tx.Bucket(bucketEvents).Put(id, evEnc); err != nil {
			return fmt.Errorf("event %s: %w", ev.ID, err)
		}
		if err := putNew(b, ds); err != nil {
			return fmt.Errorf("event %s: %w", ev.ID, err)
		}
		if ev.Parked {
			if err := park(b, &ev); err != nil {
				return fmt.Errorf("event %s: park: %w", ev.ID, err)
			}
		}
		if dedupe.Key != "" {
			if err := claimKey(b, dedupe, ev.ID); err != nil {
				return fmt.Errorf("event %s: dedupe claim: %w", ev.ID, err)
			}
		}
		*res = store.AcceptResult{EventID: ev.ID, Deliveries: len(ds)}
		return nil
	}
	return apply, res
}

func park(b *batch, ev *store.Event) error {
	if err := b.tx.Bucket(bucketParked).Put(timeKey(ev.ReceivedAt.UnixNano(), ev.ID), empty); err != nil {
		return err
	}
	b.count(parkedCountKey, 1)
	return nil
}

func unpark(b *batch, ev *store.Event) error {
	if err := b.tx.Bucket(bucketParked).Delete(timeKey(ev.ReceivedAt.UnixNano(), ev.ID)); err != nil {
		return err
	}
	b.count(parkedCountKey, -1)
	return nil
}

// liveClaim returns the event holding key's unexpired claim.
func liveClaim(b *batch, key string) (string, bool) {
	v := b.tx.Bucket(bucketDedupe).Get([]byte(key))
	if v == nil {
		return "", false
	}
	expiry, holder := splitTimeKey(v)
	if expiry != 0 && expiry <= b.now.UnixNano() {
		return "", false
	}
	return holder, true
}

// claimKey records eventID as the holder of d.Key, replacing an expired
// claim. A TTL <= 0 claims the key for good.
func claimKey(b *batch, d store.Dedupe, eventID string) error {
	dedupe, exp := b.tx.Bucket(bucketDedupe), b.tx.Bucket(bucketDedupeExp)
	key := []byte(d.Key)
	if old := dedupe.Get(key); old != nil {
		if oldExpiry, _ := splitTimeKey(old); oldExpiry != 0 {
			if err := exp.Delete(timeKey(oldExpiry, d.Key)); err != nil {
				return err
			}
		}
	}
	var expiry int64
	if d.TTL > 0 {
		expiry = b.now.Add(d.TTL).UnixNano()
		if err := exp.Put(timeKey(expiry, d.Key), empty); err != nil {
			return err
		}
	}
	return dedupe.Put(key, dedupeValue(expiry, eventID))
}

// ReplayParked routes a parked event to dests. With no dests it changes
// nothing.
func (s *Store) ReplayParked(ctx context.Context, id string, dests []string) (int, error) {
	if len(dests) == 0 {
		err := s.view(ctx, "replay parked "+id, func(tx *bbolt.Tx) error {
			_, err := parkedEvent(tx, id, false)
			return err
		})
		return 0, err
	}
	ds, ids := newDeliveries(id, dests, s.clock.Now())
	err := s.submit(ctx, func(b *batch) error {
		rec, err := parkedEvent(b.tx, id, true)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return reject(err)
			}
			return err
		}
		if err := unpark(b, &rec.Event); err != nil {
			return err
		}
		rec.Parked = false
		rec.Destinations = slices.Clone(dests)
		rec.DeliveryIDs = append(rec.DeliveryIDs, ids...)
		if err := putEvent(b.tx, rec); err != nil {
			return err
		}
		return putNew(b, ds)
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: replay parked %s: %w", id, err)
	}
	return len(ds), nil
}

// parkedEvent loads event id, which must be parked, with its body when
// withBody (to write it again).
func parkedEvent(tx *bbolt.Tx, id string, withBody bool) (*eventRec, error) {
	rec, err := readerOf(tx).readEvent(id, withBody)
	if err != nil {
		return nil, err
	}
	if !rec.Parked {
		return nil, fmt.Errorf("event %s is not parked: %w", id, store.ErrNotFound)
	}
	return rec, nil
}
