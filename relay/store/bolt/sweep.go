package bolt

import (
	"context"
	"errors"
	"time"

	"github.com/relaygw/relay/internal/clock"
	"github.com/relaygw/relay/relay/store"
)

// sweepLimit caps the claims one sweep deletes, so a sweep never makes one
// batch slow; the next sweep takes the rest.
const sweepLimit = 1000

// startSweeps runs sweep every interval of the store's clock, from the end
// of the last one. The timer is armed before it returns, so that a test's
// fake clock moved after Open reaches it.
func (s *Store) startSweeps(interval time.Duration) {
	due := make(chan struct{}, 1)
	t := s.clock.AfterFunc(interval, func() {
		select {
		case due <- struct{}{}:
		default:
		}
	})
	go s.sweepLoop(t, interval, due)
}

func (s *Store) sweepLoop(t clock.Timer, interval time.Duration, due <-chan struct{}) {
	defer close(s.sweepDone)
	defer t.Stop()
	for {
		select {
		case <-s.stopSweep:
			return
		case <-due:
			s.sweep()
			t.Reset(interval)
		}
	}
}

// sweep drops expired dedupe claims and leases, and deletes the events past
// their retention. Expired claims are already ignored by Accept; sweeping
// only frees the space.
func (s *Store) sweep() {
	n, err := s.sweepClaims(context.Background())
	leases := s.leases.sweep(s.clock.Now())
	if err != nil && !errors.Is(err, store.ErrClosed) {
		s.log.Warn("bolt: sweep expired dedupe claims", "err", err)
	}
	events, err := s.sweepEvents(context.Background(), s.clock.Now())
	if err != nil && !errors.Is(err, store.ErrClosed) {
		s.log.Warn("bolt: delete events past their retention", "err", err)
	}
	s.log.Debug("bolt: swept", "claims", n, "leases", leases, "events", events)
}

// sweepClaims deletes up to sweepLimit expired dedupe claims, soonest expiry
// first, and returns how many it deleted.
func (s *Store) sweepClaims(ctx context.Context) (int, error) {
	n := 0
	err := s.submit(ctx, func(b *batch) error {
		exp := b.tx.Bucket(bucketDedupeExp)
		dedupe := b.tx.Bucket(bucketDedupe)
		now := b.now.UnixNano()
		// Collect first: deleting through a cursor can make it skip keys.
		var expired [][]byte
		c := exp.Cursor()
		for k, _ := c.First(); k != nil && len(expired) < sweepLimit; k, _ = c.Next() {
			if expiry, _ := splitTimeKey(k); expiry > now {
				break
			}
			expired = append(expired, clone(k))
		}
		for _, k := range expired {
			expiry, key := splitTimeKey(k)
			// The key may have been claimed again since; then the claim
			// has a later expiry and its own index entry.
			if v := dedupe.Get([]byte(key)); v != nil {
				if held, _ := splitTimeKey(v); held == expiry {
					if err := dedupe.Delete([]byte(key)); err != nil {
						return err
					}
				}
			}
			if err := exp.Delete(k); err != nil {
				return err
			}
		}
		n = len(expired)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
