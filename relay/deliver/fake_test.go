package deliver

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/relaygw/relay/relay/store"
)

// memStore is an in-memory stand-in for the store while relay/store/bolt is
// being written. It follows the store contract for the calls delivery makes:
// lease tokens, due times, expired leases making a delivery due again.
type memStore struct {
	mu     sync.Mutex
	events map[string]store.Event
	recs   map[string]*memRec
}

type memRec struct {
	store.DeliveryRecord
	token string
	until time.Time
}

func newMemStore() *memStore {
	return &memStore{events: map[string]store.Event{}, recs: map[string]*memRec{}}
}

func (s *memStore) Accept(_ context.Context, ev store.Event, dests []string, dd store.Dedupe) (store.AcceptResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ev.ID == "" {
		ev.ID = store.NewID("evt_")
	}
	ev.DedupeKey = dd.Key
	ev.Destinations = dests
	s.events[ev.ID] = ev
	now := time.Now()
	for _, d := range dests {
		id := store.NewID("dlv_")
		s.recs[id] = &memRec{DeliveryRecord: store.DeliveryRecord{Delivery: store.Delivery{
			ID: id, EventID: ev.ID, Destination: d, State: store.StatePending,
			CreatedAt: now, DueAt: now, UpdatedAt: now,
		}}}
	}
	return store.AcceptResult{EventID: ev.ID, Deliveries: len(dests)}, nil
}

func (s *memStore) Event(_ context.Context, id string) (store.EventRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ev, ok := s.events[id]
	if !ok {
		return store.EventRecord{}, store.ErrNotFound
	}
	r := store.EventRecord{Event: ev}
	for _, rec := range s.recs {
		if rec.EventID == id {
			dr := rec.DeliveryRecord
			dr.AttemptLog = slices.Clone(dr.AttemptLog)
			r.Deliveries = append(r.Deliveries, dr)
		}
	}
	slices.SortFunc(r.Deliveries, func(a, b store.DeliveryRecord) int { return cmpString(a.ID, b.ID) })
	return r, nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *memStore) Lease(_ context.Context, dest string, n int, lease time.Duration) ([]store.Delivery, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	var due []*memRec
	for _, r := range s.recs {
		if r.Destination == dest && r.State == store.StatePending && !r.DueAt.After(now) && !r.until.After(now) {
			due = append(due, r)
		}
	}
	slices.SortFunc(due, func(a, b *memRec) int { return a.DueAt.Compare(b.DueAt) })
	var out []store.Delivery
	for _, r := range due[:min(n, len(due))] {
		r.token = store.NewID("lse_")
		r.until = now.Add(lease)
		d := r.Delivery
		d.Lease = r.token
		ev := s.events[r.EventID]
		d.Event = &ev
		out = append(out, d)
	}
	return out, nil
}

// held returns d's record if d's lease is the current one.
func (s *memStore) held(d store.Delivery) (*memRec, error) {
	r, ok := s.recs[d.ID]
	if !ok {
		return nil, fmt.Errorf("mem: %s: %w", d.ID, store.ErrNotFound)
	}
	if r.token == "" || r.token != d.Lease || !r.until.After(time.Now()) {
		return nil, fmt.Errorf("mem: %s: %w", d.ID, store.ErrLeaseLost)
	}
	return r, nil
}

func (s *memStore) ExtendLease(_ context.Context, d store.Delivery, lease time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.held(d)
	if err != nil {
		return err
	}
	r.until = time.Now().Add(lease)
	return nil
}

func (s *memStore) Release(_ context.Context, d store.Delivery, due time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.held(d)
	if err != nil {
		return err
	}
	r.token, r.until, r.DueAt = "", time.Time{}, due
	return nil
}

func (s *memStore) finish(d store.Delivery, a store.Attempt, state store.DeliveryState, due time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.held(d)
	if err != nil {
		return err
	}
	r.token, r.until = "", time.Time{}
	r.State = state
	r.Attempts++
	r.LastStatus, r.LastError = a.Status, a.Error
	r.UpdatedAt = time.Now()
	if !due.IsZero() {
		r.DueAt = due
	}
	r.AttemptLog = append(r.AttemptLog, a)
	return nil
}

func (s *memStore) Complete(_ context.Context, d store.Delivery, a store.Attempt) error {
	return s.finish(d, a, store.StateDelivered, time.Time{})
}

func (s *memStore) Retry(_ context.Context, d store.Delivery, a store.Attempt, due time.Time) error {
	return s.finish(d, a, store.StatePending, due)
}

func (s *memStore) DeadLetter(_ context.Context, d store.Delivery, a store.Attempt) error {
	return s.finish(d, a, store.StateDead, time.Time{})
}
