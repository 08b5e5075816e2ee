package redis

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/relaygw/relay/relay/store"
)

// Lease hands out up to n due deliveries of dest, oldest due first, each with
// its event, in one round trip.
func (s *Store) Lease(ctx context.Context, dest string, n int, lease time.Duration) ([]store.Delivery, error) {
	op := "lease " + dest
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("redis: %s: %w", op, err)
	}
	if n <= 0 {
		return nil, nil
	}
	// One random base per call; the script numbers the tokens under it.
	reply, err := s.run(ctx, s.sc.lease, dest, n, max(lease.Milliseconds(), 1), rand.Text())
	if err != nil {
		// Only a refusal counts: a lease that found nothing due wrote
		// nothing, so its success says nothing about writes.
		s.wrote(err, 1)
		return nil, s.fail(op, err)
	}
	arr, err := array(reply)
	if err != nil {
		return nil, fmt.Errorf("redis: %s: %w", op, err)
	}
	out := make([]store.Delivery, 0, len(arr))
	for _, item := range arr {
		d, err := leasedFrom(item)
		if err != nil {
			return nil, fmt.Errorf("redis: %s: %w", op, err)
		}
		out = append(out, d)
	}
	return out, nil
}

// leasedFrom decodes one {delivery fields, event fields} pair of the lease
// script.
func leasedFrom(item any) (store.Delivery, error) {
	pair, err := array(item)
	if err != nil || len(pair) != 2 {
		return store.Delivery{}, fmt.Errorf("bad lease item %v: %v", item, err)
	}
	dh, err := fields(pair[0])
	if err != nil {
		return store.Delivery{}, err
	}
	eh, err := fields(pair[1])
	if err != nil {
		return store.Delivery{}, err
	}
	d := deliveryFrom(dh)
	d.Lease = dh["tok"]
	ev, err := eventFrom(eh)
	if err != nil {
		return store.Delivery{}, err
	}
	d.Event = &ev
	return d, nil
}

// ExtendLease pushes a held lease's expiry to now+lease.
func (s *Store) ExtendLease(ctx context.Context, d store.Delivery, lease time.Duration) error {
	return s.leased(ctx, "extend lease", d, s.sc.extend, max(lease.Milliseconds(), 1))
}

// Release gives a leased delivery back, due at due, without an attempt.
func (s *Store) Release(ctx context.Context, d store.Delivery, due time.Time) error {
	due = s.dueOrNow(due)
	return s.leased(ctx, "release", d, s.sc.release, millis(due), nanos(due))
}

// leased runs a script that acts on a held lease and maps its status code.
//
// go-redis retries a command whose reply was lost; if the first run did
// finish, the retry finds the lease gone and this returns ErrLeaseLost for
// an outcome that was in fact recorded. Callers treat ErrLeaseLost as "not
// mine any more", which is safe either way.
func (s *Store) leased(ctx context.Context, op string, d store.Delivery, sc *goredis.Script, args ...any) error {
	what := op + " " + d.ID
	if err := s.check(); err != nil {
		return fmt.Errorf("redis: %s: %w", what, err)
	}
	if d.Lease == "" {
		return fmt.Errorf("redis: %s: no lease token: %w", what, store.ErrLeaseLost)
	}
	reply, err := s.run(ctx, sc, append([]any{d.ID, d.Lease}, args...)...)
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
