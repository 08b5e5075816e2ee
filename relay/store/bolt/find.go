package bolt

import (
	"context"
	"encoding/base64"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/relaygw/relay/relay/store"
)

// DeleteDLQ takes a dead delivery out of the DLQ for good; it stays in its
// event's record as discarded.
func (s *Store) DeleteDLQ(ctx context.Context, id string) error {
	err := s.submit(ctx, func(b *batch) error {
		rec, err := takeDead(b, id)
		if err != nil {
			return err
		}
		rec.State = store.StateDiscarded
		rec.DeadAt = 0
		rec.UpdatedAt = b.now
		return putDelivery(b.tx, rec)
	})
	if err != nil {
		return fmt.Errorf("bolt: delete dlq %s: %w", id, err)
	}
	return nil
}

// FindEvents walks the events newest first (event ids sort by time) from
// the cursor, the last id examined, and returns the matches.
func (s *Store) FindEvents(ctx context.Context, q store.EventQuery, p store.Page) ([]store.EventRecord, string, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = store.DefaultPageLimit
	}
	after, err := base64.RawURLEncoding.DecodeString(p.Cursor)
	if err != nil {
		return nil, "", fmt.Errorf("bolt: find events: %w %q: %w", store.ErrBadCursor, p.Cursor, err)
	}
	items := []store.EventRecord{}
	var next string
	err = s.view(ctx, "find events", func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		k, _ := c.Last()
		if len(after) > 0 {
			// The newest key older than the cursor.
			if k, _ = c.Seek(after); k == nil {
				k, _ = c.Last()
			} else {
				k, _ = c.Prev()
			}
		}
		var last []byte
		for examined := 0; k != nil && len(items) < limit && examined < store.FindScanLimit; k, _ = c.Prev() {
			if q.Exhausted(string(k)) {
				k = nil
				break
			}
			examined++
			last = k
			rec, ok, err := findOne(tx, string(k), q)
			if err != nil {
				return err
			}
			if ok {
				items = append(items, rec)
			}
		}
		if k != nil {
			next = base64.RawURLEncoding.EncodeToString(last)
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return items, next, nil
}

// findOne loads event id with its deliveries (no attempt logs) if q matches
// it. The event's own fields are checked first, so most misses cost one
// read.
func findOne(tx *bbolt.Tx, id string, q store.EventQuery) (store.EventRecord, bool, error) {
	ev, err := getEventMeta(tx, id)
	if err != nil {
		return store.EventRecord{}, false, err
	}
	out := store.EventRecord{Event: ev.Event}
	if !(store.EventQuery{WebhookID: q.WebhookID, DedupeKey: q.DedupeKey, Since: q.Since, Until: q.Until}).Matches(out) {
		return out, false, nil
	}
	out.Deliveries = make([]store.DeliveryRecord, 0, len(ev.DeliveryIDs))
	for _, did := range ev.DeliveryIDs {
		d, err := getDelivery(tx, did)
		if err != nil {
			return store.EventRecord{}, false, err
		}
		out.Deliveries = append(out.Deliveries, store.DeliveryRecord{Delivery: d.Delivery})
	}
	return out, q.Matches(out), nil
}
