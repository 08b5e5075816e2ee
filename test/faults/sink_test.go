package faults

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Sink modes: what a destination answers.
const (
	modeUp   int32 = iota // 200, and the delivery is recorded
	modeDown              // 503
	modeFlap              // 500 and 200 by turns of flapPeriod
)

// flapPeriod is how long a flapping destination stays in each state.
const flapPeriod = 300 * time.Millisecond

// sink is the receivers' side of the ledger: one httptest server that
// serves every destination under /d/{name} and records each delivery it
// answers 200 to, by destination and mid.
type sink struct {
	srv   *httptest.Server
	modes map[string]*atomic.Int32
	// delay is how long each request is held before it is answered, so
	// that deliveries are in flight when a process dies.
	delay atomic.Int64
	// hold, when set, names a relay (its X-Instance header) whose requests
	// are held open, never answered, until it goes away: deliveries it has
	// leased when it is killed.
	hold atomic.Pointer[string]
	// failFirst, when set, names a destination whose first attempt of
	// every delivery is answered 500, so that retries are waiting.
	failFirst atomic.Pointer[string]
	// inflight counts the requests being served now.
	inflight atomic.Int64

	mu       sync.Mutex
	got      map[dmKey][]delivery
	problems []string // deliveries that break the contract (wrong body, no key)
	held     map[dmKey]bool
}

type dmKey struct{ dest, mid string }

// delivery is one request the sink answered 200.
type delivery struct {
	at      time.Time
	eventID string
	attempt string
}

func newSink(t testing.TB) *sink {
	t.Helper()
	s := &sink{modes: map[string]*atomic.Int32{}, got: map[dmKey][]delivery{}, held: map[dmKey]bool{}}
	for _, d := range destinations {
		s.modes[d] = new(atomic.Int32)
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the base URL destinations are configured with.
func (s *sink) URL() string { return s.srv.URL }

// setMode switches every destination to mode.
func (s *sink) setMode(mode int32) {
	for _, m := range s.modes {
		m.Store(mode)
	}
}

func (s *sink) serve(w http.ResponseWriter, r *http.Request) {
	dest, _ := strings.CutPrefix(r.URL.Path, "/d/")
	mode, ok := s.modes[dest]
	body, err := io.ReadAll(r.Body)
	if !ok || err != nil {
		http.Error(w, "no such destination", http.StatusNotFound)
		return
	}
	mid := r.Header.Get("Idempotency-Key")
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	if f := s.failFirst.Load(); f != nil && *f == dest && r.Header.Get("X-Relay-Attempt") == "1" {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	if h := s.hold.Load(); h != nil && *h == r.Header.Get("X-Instance") {
		s.mu.Lock()
		s.held[dmKey{dest, mid}] = true
		s.mu.Unlock()
		<-r.Context().Done()
		return
	}
	if d := time.Duration(s.delay.Load()); d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	switch mode.Load() {
	case modeDown:
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	case modeFlap:
		if time.Now().UnixNano()/int64(flapPeriod)%2 == 0 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case mid == "":
		s.problems = append(s.problems, fmt.Sprintf("%s: delivery without Idempotency-Key", dest))
	case !bytes.Equal(body, bodyFor(mid)):
		s.problems = append(s.problems, fmt.Sprintf("%s: mid %s: body %q is not the bytes posted", dest, mid, body))
	}
	k := dmKey{dest, mid}
	s.got[k] = append(s.got[k], delivery{at: time.Now(), eventID: r.Header.Get("X-Relay-Event-Id"), attempt: r.Header.Get("X-Relay-Attempt")})
	w.WriteHeader(http.StatusOK)
}

// takeover returns how long after since the last of the held deliveries
// was delivered (by another relay), and how many were held; ok is false
// while one of them is still undelivered.
func (s *sink) takeover(since time.Time) (took time.Duration, n int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.held {
		ds := s.got[k]
		if len(ds) == 0 {
			return 0, len(s.held), false
		}
		took = max(took, ds[0].at.Sub(since))
	}
	return took, len(s.held), true
}

// snapshot copies what the sink has recorded.
func (s *sink) snapshot() (map[dmKey][]delivery, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	got := make(map[dmKey][]delivery, len(s.got))
	for k, v := range s.got {
		got[k] = append([]delivery(nil), v...)
	}
	return got, append([]string(nil), s.problems...)
}
