package bolt

import (
	"context"
	"crypto/rand"
	"encoding/binary"
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
	// rec is the delivery as stored when it was leased (without its event).
	// Only an outcome under this lease may change the stored record (a
	// leased delivery is pending; the DLQ calls touch dead ones only), so
	// the outcome starts from rec instead of reading and decoding it again.
	rec deliveryRec
}

func (l *lease) heldBy(token string, now time.Time) bool {
	return l != nil && token != "" && l.token == token && !l.finishing && now.Before(l.expiry)
}

// picked is a delivery that takeDue leased.
type picked struct {
	id, token string
	l         *lease
}

// takeDue walks a due index from its start and leases up to n deliveries due
// by now that no live lease holds, until expiry. The head of the index is
// mostly deliveries in flight, so the walk takes the lock once and looks ids
// up without copying them.
func (t *leaseTable) takeDue(c *bbolt.Cursor, n int, now, expiry time.Time) []picked {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []picked
	for k, _ := c.First(); k != nil && len(out) < n; k, _ = c.Next() {
		if len(k) < 8 {
			continue
		}
		if int64(binary.BigEndian.Uint64(k)) > now.UnixNano() {
			break
		}
		if l := t.m[string(k[8:])]; l != nil && (l.finishing || now.Before(l.expiry)) {
			continue
		}
		p := picked{id: string(k[8:]), token: rand.Text(), l: &lease{expiry: expiry}}
		p.l.token = p.token
		t.m[p.id] = p.l
		out = append(out, p)
	}
	return out
}

// untake gives back leases that Lease took but could not hand out.
func (t *leaseTable) untake(ps []picked) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range ps {
		if l := t.m[p.id]; l != nil && l.token == p.token {
			delete(t.m, p.id)
		}
	}
}

// remember keeps the record that a lease's delivery was read as.
func (t *leaseTable) remember(l *lease, rec *deliveryRec) {
	t.mu.Lock()
	defer t.mu.Unlock()
	l.rec = *rec
	l.rec.Event = nil
}

// claim checks that token holds id's lease, marks it finishing and returns
// a copy of the record the delivery was leased as: the outcome's function
// changes its copy, so a commit that fails and is tried again starts over
// from the stored state.
func (t *leaseTable) claim(b *batch, id, token string) (*deliveryRec, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.m[id]
	if !l.heldBy(token, b.now) {
		return nil, store.ErrLeaseLost
	}
	l.finishing = true
	b.claimed = append(b.claimed, claim{id: id, l: l})
	rec := l.rec
	return &rec, nil
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
	ps := s.leases.takeDue(q.Cursor(), n, now, now.Add(d))
	events := map[string]*store.Event{}
	r := readerOf(tx)
	out := make([]store.Delivery, 0, len(ps))
	for _, p := range ps {
		rec, err := r.delivery(p.id)
		if err == nil {
			s.leases.remember(p.l, rec)
			rec.Event, err = cachedEvent(r, events, rec.EventID)
		}
		if err != nil {
			s.leases.untake(ps)
			return nil, err
		}
		rec.Lease = p.token
		out = append(out, rec.Delivery)
	}
	return out, nil
}

// cachedEvent loads an event once per Lease call; deliveries of one event
// share it.
func cachedEvent(r *reader, cache map[string]*store.Event, id string) (*store.Event, error) {
	if ev, ok := cache[id]; ok {
		return ev, nil
	}
	rec, err := r.event(id)
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
