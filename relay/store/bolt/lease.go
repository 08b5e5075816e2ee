package bolt

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/bbolt"

	"github.com/relaygw/relay/relay/store"
)

// leaseTable holds the leases in memory: the store is single-process, so a
// lease needs no disk write and dies with the process, which is exactly when
// its delivery must become due again.
type leaseTable struct {
	// view is held shared by every Lease for its whole read transaction and
	// exclusively by the committer while it drops the leases of committed
	// outcomes. So a Lease whose snapshot predates a commit can never see
	// that commit's deliveries unleased.
	view sync.RWMutex

	mu sync.Mutex
	m  map[string]*lease
}

type lease struct {
	token  string
	expiry time.Time
	// finishing is set while an outcome for the delivery is being committed;
	// nobody may lease, extend or finish it meanwhile.
	finishing bool
}

func (l *lease) heldBy(token string, now time.Time) bool {
	return l != nil && token != "" && l.token == token && !l.finishing && now.Before(l.expiry)
}

// take leases id until expiry unless a live lease holds it.
func (t *leaseTable) take(id string, now, expiry time.Time) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if l := t.m[id]; l != nil && (l.finishing || now.Before(l.expiry)) {
		return "", false
	}
	token := rand.Text()
	t.m[id] = &lease{token: token, expiry: expiry}
	return token, true
}

// untake gives back leases that Lease took but could not hand out.
func (t *leaseTable) untake(ds []store.Delivery) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, d := range ds {
		if l := t.m[d.ID]; l != nil && l.token == d.Lease {
			delete(t.m, d.ID)
		}
	}
}

// claim checks that token holds id's lease and marks it finishing.
func (t *leaseTable) claim(b *batch, id, token string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.m[id]
	if !l.heldBy(token, b.now) {
		return store.ErrLeaseLost
	}
	l.finishing = true
	b.claimed = append(b.claimed, claim{id: id, l: l})
	return nil
}

// unclaim undoes the claims of a transaction that did not commit; the
// workers still hold their leases and may try again.
func (t *leaseTable) unclaim(cs []claim) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range cs {
		c.l.finishing = false
	}
}

// drop ends the leases of committed outcomes.
func (t *leaseTable) drop(cs []claim) {
	if len(cs) == 0 {
		return
	}
	t.view.Lock()
	defer t.view.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range cs {
		if t.m[c.id] == c.l {
			delete(t.m, c.id)
		}
	}
}

func (t *leaseTable) extend(id, token string, now, expiry time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.m[id]
	if !l.heldBy(token, now) {
		return false
	}
	l.expiry = expiry
	return true
}

// sweep forgets expired leases and returns how many.
func (t *leaseTable) sweep(now time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for id, l := range t.m {
		if !l.finishing && !now.Before(l.expiry) {
			delete(t.m, id)
			n++
		}
	}
	return n
}

// Lease hands out up to n due deliveries of dest, oldest due first. It reads
// the due index in a read-only transaction and records leases in memory, so it
// costs no fsync.
func (s *Store) Lease(ctx context.Context, dest string, n int, lease time.Duration) ([]store.Delivery, error) {
	if lease <= 0 {
		return nil, fmt.Errorf("bolt: lease %s: lease duration %v is not positive", dest, lease)
	}
	if n <= 0 {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: lease %s: %w", dest, err)
	}
	// Lock order everywhere: closeMu before leases.view.
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return nil, fmt.Errorf("bolt: lease %s: %w", dest, store.ErrClosed)
	}
	s.leases.view.RLock()
	defer s.leases.view.RUnlock()
	var out []store.Delivery
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		out, err = s.leaseDue(tx, dest, n, lease)
		return err
	})
	if err != nil {
		s.leases.untake(out)
		return nil, fmt.Errorf("bolt: lease %s: %w", dest, err)
	}
	return out, nil
}

func (s *Store) leaseDue(tx *bbolt.Tx, dest string, n int, d time.Duration) ([]store.Delivery, error) {
	q, _ := queueBucket(tx, dest)
	if q == nil {
		return nil, nil
	}
	now := time.Now()
	expiry := now.Add(d)
	events := map[string]*store.Event{}
	var out []store.Delivery
	c := q.Cursor()
	for k, _ := c.First(); k != nil && len(out) < n; k, _ = c.Next() {
		due, id := splitTimeKey(k)
		if due > now.UnixNano() {
			break
		}
		token, ok := s.leases.take(id, now, expiry)
		if !ok {
			continue
		}
		rec, err := getDelivery(tx, id)
		if err == nil {
			rec.Event, err = cachedEvent(tx, events, rec.EventID)
		}
		rec.Lease = token
		out = append(out, rec.Delivery)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// cachedEvent loads an event once per Lease call; deliveries of one event
// share it.
func cachedEvent(tx *bbolt.Tx, cache map[string]*store.Event, id string) (*store.Event, error) {
	if ev, ok := cache[id]; ok {
		return ev, nil
	}
	rec, err := getEvent(tx, id)
	if err != nil {
		return nil, err
	}
	cache[id] = &rec.Event
	return &rec.Event, nil
}

// ExtendLease pushes a held lease's expiry to now+lease. It writes nothing to
// disk.
func (s *Store) ExtendLease(ctx context.Context, d store.Delivery, lease time.Duration) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return fmt.Errorf("bolt: extend lease %s: %w", d.ID, store.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: extend lease %s: %w", d.ID, err)
	}
	now := time.Now()
	if !s.leases.extend(d.ID, d.Lease, now, now.Add(lease)) {
		return fmt.Errorf("bolt: extend lease %s: %w", d.ID, store.ErrLeaseLost)
	}
	return nil
}
