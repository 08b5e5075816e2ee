package bolt

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/relaygw/relay/relay/store"
)

// fullPassEvery is how often the retention walk starts again at the oldest
// event. Between full passes it goes on from where it stopped, so it reads
// each event about once as it comes of age, not every sweep: the events it
// keeps (a dead delivery, a parked event) may be many. An event that
// finishes after the walk passed it is deleted on the next full pass, at
// most this much later than its retention says.
const fullPassEvery = time.Hour

// retireWalk is where the retention walk goes on from.
type retireWalk struct {
	from   []byte    // the next event id to look at; nil: the oldest
	passAt time.Time // when the last full pass started
}

// sweepEvents deletes the events that finished (every delivery delivered, or
// deleted from the DLQ) more than Retention before now, with their bodies,
// deliveries and attempt logs, sweepLimit per transaction. It walks the
// events oldest first (their ids sort by time) and stops at the first one
// made within the retention. It returns how many events it deleted.
func (s *Store) sweepEvents(ctx context.Context, now time.Time) (int, error) {
	s.retireMu.Lock()
	defer s.retireMu.Unlock()
	w := &s.retire
	if now.Sub(w.passAt) >= fullPassEvery {
		w.from, w.passAt = nil, now
	}
	cutoff := now.Add(-s.retention).UnixNano()
	total := 0
	for {
		ids, at, more, err := s.retirable(ctx, w.from, cutoff)
		if err != nil {
			return total, err
		}
		if len(ids) > 0 {
			n, err := s.deleteEvents(ctx, ids, cutoff)
			total += n
			if err != nil {
				return total, err
			}
		}
		w.from = at
		if !more {
			return total, nil
		}
	}
}

// retirable walks the events from from (the oldest when nil) in a read
// transaction and returns up to sweepLimit that may be deleted, and the key
// to go on from. more is false when the walk reached an event made after
// cutoff, or the end. Event ids sort by the time in them (store.NewID), so
// no event after that one can be old enough; the time is the id's, not
// ReceivedAt, which a caller may set and a clock step may put out of order.
// An id Relay did not make carries no time and never stops the walk. It looks at no more than sweepLimit*8 events,
// so a long stretch of events that must be kept does not hold one
// transaction open for long.
func (s *Store) retirable(ctx context.Context, from []byte, cutoff int64) (ids []string, at []byte, more bool, err error) {
	err = s.view(ctx, "retire", func(tx *bbolt.Tx) error {
		r := readerOf(tx)
		c := tx.Bucket(bucketEvents).Cursor()
		k, v := c.First()
		if from != nil {
			k, v = c.Seek(from)
		}
		var last []byte
		for seen := 0; k != nil; k, v = c.Next() {
			if seen == sweepLimit*8 || len(ids) == sweepLimit {
				at, more = clone(k), true
				return nil
			}
			if t, ok := store.IDTime(string(k)); ok && t.UnixNano() > cutoff {
				at = clone(k)
				return nil
			}
			seen++
			last = k
			ev := new(eventRec)
			if err := decodeEvent(string(k), v, ev, false); err != nil {
				s.unreadable(k, err)
				continue
			}
			ok, err := finishedBy(r, ev, cutoff)
			if err != nil {
				s.unreadable(k, err)
				continue
			}
			if ok {
				ids = append(ids, ev.ID)
			}
		}
		// The end: the next walk starts after the last event seen.
		at = from
		if last != nil {
			at = append(clone(last), 0)
		}
		return nil
	})
	return ids, at, more, err
}

// unreadable logs an event that the retention walk could not judge and
// keeps: one bad record must not stop the walk at it for good.
func (s *Store) unreadable(id []byte, err error) {
	s.log.Warn("bolt: retention: event unreadable, kept", "event", string(id), "err", err)
}

// finishedBy reports whether every delivery of ev was delivered or
// discarded at or before cutoff. A parked event, or one without deliveries,
// is never finished: it waits for a replay.
func finishedBy(r *reader, ev *eventRec, cutoff int64) (bool, error) {
	if ev.Parked || len(ev.DeliveryIDs) == 0 {
		return false, nil
	}
	for _, id := range ev.DeliveryIDs {
		var d deliveryRec
		err := r.deliveryInto(id, &d)
		if errors.Is(err, store.ErrNotFound) {
			return false, nil // kept: not Relay's to judge
		}
		if err != nil {
			return false, err
		}
		if d.State != store.StateDelivered && d.State != store.StateDiscarded {
			return false, nil
		}
		if d.UpdatedAt.UnixNano() > cutoff {
			return false, nil
		}
	}
	return true, nil
}

// deleteEvents deletes the events ids and all that is theirs, each only if
// it is still finished by cutoff when the transaction runs, and returns how
// many it deleted.
func (s *Store) deleteEvents(ctx context.Context, ids []string, cutoff int64) (int, error) {
	n := 0
	err := s.submit(ctx, func(b *batch) error {
		n = 0 // a batch that failed is applied again
		r := readerOf(b.tx)
		for _, id := range ids {
			ev, err := r.eventMeta(id)
			if err != nil {
				continue // deleted, or unreadable, since the walk
			}
			if ok, err := finishedBy(r, ev, cutoff); err != nil || !ok {
				continue // changed since the walk; kept
			}
			if err := deleteEvent(b.tx, ev); err != nil {
				return fmt.Errorf("event %s: %w", id, err)
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: retire events: %w", err)
	}
	return n, nil
}

// deleteEvent deletes ev with its body, its deliveries and their attempt
// logs.
func deleteEvent(tx *bbolt.Tx, ev *eventRec) error {
	attempts := tx.Bucket(bucketAttempts)
	for _, did := range ev.DeliveryIDs {
		prefix := attemptPrefix(did)
		// Collect first: deleting through a cursor can make it skip keys.
		var keys [][]byte
		c := attempts.Cursor()
		for k, _ := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, _ = c.Next() {
			keys = append(keys, clone(k))
		}
		for _, k := range keys {
			if err := attempts.Delete(k); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketDeliveries).Delete([]byte(did)); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketEvents).Delete([]byte(ev.ID))
}
