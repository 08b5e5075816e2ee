package bolt

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"

	"go.etcd.io/bbolt"

	"github.com/relaygw/relay/relay/store"
)

// Event returns an event with its deliveries, in creation order, and their
// attempt logs.
func (s *Store) Event(ctx context.Context, id string) (store.EventRecord, error) {
	var out store.EventRecord
	err := s.view(ctx, "event "+id, func(tx *bbolt.Tx) error {
		rec, err := getEvent(tx, id)
		if err != nil {
			return err
		}
		out.Event = rec.Event
		out.Deliveries = make([]store.DeliveryRecord, 0, len(rec.DeliveryIDs))
		for _, did := range rec.DeliveryIDs {
			d, err := getDelivery(tx, did)
			if err != nil {
				return err
			}
			log, err := attemptLog(tx, d)
			if err != nil {
				return err
			}
			out.Deliveries = append(out.Deliveries, store.DeliveryRecord{Delivery: d.Delivery, AttemptLog: log})
		}
		return nil
	})
	return out, err
}

// ListDLQ lists dead-lettered deliveries, oldest dead first; dest "" means
// every destination.
func (s *Store) ListDLQ(ctx context.Context, dest string, p store.Page) ([]store.Delivery, string, error) {
	var (
		items []store.Delivery
		next  string
	)
	err := s.view(ctx, "list dlq", func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketDLQ)
		if dest != "" {
			b, _ = dlqDestBucket(tx, dest)
		}
		var err error
		next, err = page(b, p, func(k []byte) error {
			_, id := splitTimeKey(k)
			rec, err := getDelivery(tx, id)
			if err != nil {
				return err
			}
			items = append(items, rec.Delivery)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, "", err
	}
	return items, next, nil
}

// ListParked lists parked events, oldest first, with their bodies.
func (s *Store) ListParked(ctx context.Context, p store.Page) ([]store.Event, string, error) {
	var (
		items []store.Event
		next  string
	)
	err := s.view(ctx, "list parked", func(tx *bbolt.Tx) error {
		var err error
		next, err = page(tx.Bucket(bucketParked), p, func(k []byte) error {
			_, id := splitTimeKey(k)
			rec, err := getEvent(tx, id)
			if err != nil {
				return err
			}
			items = append(items, rec.Event)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, "", err
	}
	return items, next, nil
}

// page calls fn for the keys of one page of b, in key order, and returns the
// cursor of the next page ("" after the last). The cursor is the last key
// handed out, so a page stays correct while entries come and go.
func page(b *bbolt.Bucket, p store.Page, fn func(k []byte) error) (string, error) {
	if b == nil {
		return "", nil
	}
	limit := p.Limit
	if limit <= 0 {
		limit = store.DefaultPageLimit
	}
	after, err := base64.RawURLEncoding.DecodeString(p.Cursor)
	if err != nil {
		return "", fmt.Errorf("%w %q: %w", store.ErrBadCursor, p.Cursor, err)
	}
	c := b.Cursor()
	k, _ := c.First()
	if len(after) > 0 {
		if k, _ = c.Seek(after); k != nil && string(k) == string(after) {
			k, _ = c.Next()
		}
	}
	var last []byte
	for n := 0; k != nil && n < limit; k, _ = c.Next() {
		if err := fn(k); err != nil {
			return "", err
		}
		last = k
		n++
	}
	if k == nil {
		return "", nil
	}
	return base64.RawURLEncoding.EncodeToString(last), nil
}

// Depths reads the counters kept with every write; it never scans a queue.
func (s *Store) Depths(ctx context.Context) (store.Depths, error) {
	out := store.Depths{Queued: map[string]int{}, Dead: map[string]int{}}
	err := s.view(ctx, "depths", func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketCounts).ForEach(func(k, v []byte) error {
			if len(v) != 8 {
				return fmt.Errorf("counter %q: bad value %x", k, v)
			}
			n := int(binary.BigEndian.Uint64(v))
			switch key := string(k); {
			case key == string(parkedCountKey):
				out.Parked = n
			case strings.HasPrefix(key, "q\x00"):
				out.Queued[key[2:]] = n
			case strings.HasPrefix(key, "d\x00"):
				out.Dead[key[2:]] = n
			}
			return nil
		})
	})
	if err != nil {
		return store.Depths{}, err
	}
	return out, nil
}

// Delivery returns one delivery without its attempt log.
func (s *Store) Delivery(ctx context.Context, id string) (store.Delivery, error) {
	var out store.Delivery
	err := s.view(ctx, "delivery "+id, func(tx *bbolt.Tx) error {
		rec, err := getDelivery(tx, id)
		if err != nil {
			return err
		}
		out = rec.Delivery
		return nil
	})
	return out, err
}
