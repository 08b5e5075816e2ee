package bolt

import (
	"context"
	"fmt"
	"time"
)

// ExpireParked deletes the parked events received before cutoff, with
// their bodies, sweepLimit per transaction, and returns how many it
// deleted. The parked index sorts by received time, so it reads only the
// entries it deletes.
func (s *Store) ExpireParked(ctx context.Context, cutoff time.Time) (int, error) {
	total := 0
	for {
		n, more, err := s.expireParked(ctx, cutoff.UnixNano())
		total += n
		if err != nil {
			return total, fmt.Errorf("bolt: expire parked events: %w", err)
		}
		if !more {
			return total, nil
		}
	}
}

// expireParked deletes up to sweepLimit; more says whether others may be
// due.
func (s *Store) expireParked(ctx context.Context, cutoff int64) (int, bool, error) {
	// Read only after a nil error: when ctx ends first, submit returns
	// while the op may still run and write them.
	var n int
	var more bool
	err := s.submit(ctx, func(b *batch) error {
		n, more = 0, false // a batch that failed is applied again
		parked := b.tx.Bucket(bucketParked)
		// Collect first: deleting through a cursor can make it skip keys.
		var keys [][]byte
		c := parked.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if len(keys) == sweepLimit {
				more = true
				break
			}
			if at, _ := splitTimeKey(k); at >= cutoff {
				break
			}
			keys = append(keys, clone(k))
		}
		r := readerOf(b.tx)
		for _, k := range keys {
			_, id := splitTimeKey(k)
			if err := parked.Delete(k); err != nil {
				return err
			}
			b.count(parkedCountKey, -1)
			ev, err := r.eventMeta(id)
			if err != nil {
				continue // an index entry without a readable event: the entry goes
			}
			if err := deleteEvent(b.tx, ev); err != nil {
				return fmt.Errorf("event %s: %w", id, err)
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	return n, more, nil
}
