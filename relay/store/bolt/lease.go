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
	// from is where the next walk of a destination's due index starts:
	// after the last delivery leased. The head of the index is mostly
	// deliveries in flight or waiting for their outcome's commit, and a
	// backlog walked from its start skipped about 15 of them for every
	// delivery leased. Deliveries behind the mark become leasable again
	// only when a lease expires or a Lease gives its leases back, so a walk
	// starts from the beginning once the mark is older than fromFor, when
	// the rest of the index holds fewer than asked for, and after untake.
	from map[string]mark
}

// mark is a due-index key to start the next walk at, and when it stops
// being used.
type mark struct {
	key   []byte
	until time.Time
}

// fromFor bounds how long a lease that expired behind a mark can go
// unnoticed.
const fromFor = time.Second

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
	due       int64 // unix nanoseconds, as in the due index
	l         *lease
}

// takeDue walks dest's due index and leases up to n deliveries due by now
// that no live lease holds, until expiry. It starts at the destination's
// mark (see leaseTable.from), and at the start when that finds too few.
// The walk takes the lock once and looks ids up without copying them.
func (t *leaseTable) takeDue(c *bbolt.Cursor, dest string, n int, now, expiry time.Time) []picked {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []picked
	m, marked := t.from[dest]
	if marked && now.Before(m.until) {
		k, _ := c.Seek(m.key)
		out = t.walk(c, k, n, now, expiry, out)
		if len(out) == n {
			t.setMark(dest, out, now)
			return out
		}
	}
	first, _ := c.First()
	out = t.walk(c, first, n, now, expiry, out)
	t.setMark(dest, out, now)
	return out
}

// walk leases from key k on, appending to out, until out holds n.
func (t *leaseTable) walk(c *bbolt.Cursor, k []byte, n int, now, expiry time.Time, out []picked) []picked {
	for ; k != nil && len(out) < n; k, _ = c.Next() {
		if len(k) < 8 {
			continue
		}
		if int64(binary.BigEndian.Uint64(k)) > now.UnixNano() {
			break
		}
		if l := t.m[string(k[8:])]; l != nil && (l.finishing || now.Before(l.expiry)) {
			continue
		}
		p := picked{id: string(k[8:]), token: rand.Text(), due: int64(binary.BigEndian.Uint64(k)), l: &lease{expiry: expiry}}
		p.l.token = p.token
		t.m[p.id] = p.l
		out = append(out, p)
	}
	return out
}

// setMark marks dest's index after the last of out. A mark is kept for
// fromFor from when it was first set, so that walks from the start come
// at least that often however busy the destination is.
func (t *leaseTable) setMark(dest string, out []picked, now time.Time) {
	if len(out) == 0 {
		delete(t.from, dest)
		return
	}
	last := out[len(out)-1]
	m, ok := t.from[dest]
	if !ok || !now.Before(m.until) {
		m.until = now.Add(fromFor)
	}
	m.key = timeKey(last.due, last.id)
	t.from[dest] = m
}

// untake gives back leases that Lease took but could not hand out.
func (t *leaseTable) untake(dest string, ps []picked) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.from, dest) // they are behind its mark
	for _, p := range ps {
		if l := t.m[p.id]; l != nil && l.token == p.token {
			delete(t.m, p.id)
		}
	}
}

// claim checks that token holds id's lease, marks it finishing and copies
// the record the delivery was leased as into rec: the outcome changes its
// copy, so a commit that fails and is tried again starts over from the
// stored state.
func (t *leaseTable) claim(b *batch, id, token string, rec *deliveryRec) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.m[id]
	if !l.heldBy(token, b.now) {
		return store.ErrLeaseLost
	}
	l.finishing = true
	b.claimed = append(b.claimed, claim{id: id, l: l})
	*rec = l.rec
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
		return nil, fmt.Errorf("bolt: lease %s: %w", dest, err)
	}
	return out, nil
}

func (s *Store) leaseDue(tx *bbolt.Tx, dest string, n int, d time.Duration) ([]store.Delivery, error) {
	q, _ := queueBucket(tx, dest)
	if q == nil {
		return nil, nil
	}
	now := s.clock.Now()
	ps := s.leases.takeDue(q.Cursor(), dest, n, now, now.Add(d))
	events := map[string]*store.Event{}
	r := readerOf(tx)
	out := make([]store.Delivery, 0, len(ps))
	for _, p := range ps {
		// The record is read straight into the lease: nobody else reads
		// p.l.rec before its token is handed out, and the hand-over to the
		// outcome's committer orders this write before that read.
		err := r.deliveryInto(p.id, &p.l.rec)
		d := p.l.rec.Delivery
		if err == nil {
			d.Event, err = cachedEvent(r, events, d.EventID)
		}
		if err != nil {
			s.leases.untake(dest, ps)
			return nil, err
		}
		d.Lease = p.token
		out = append(out, d)
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
	now := s.clock.Now()
	if !s.leases.extend(d.ID, d.Lease, now, now.Add(lease)) {
		return fmt.Errorf("bolt: extend lease %s: %w", d.ID, store.ErrLeaseLost)
	}
	return nil
}
