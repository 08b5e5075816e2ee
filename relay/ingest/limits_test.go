package ingest_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/relay/ingest"
	"github.com/relaygw/relay/relay/route"
	"github.com/relaygw/relay/relay/store"
)

// heldStore is an Acceptor whose Accepts wait for release, each
// announcing itself on inside first: requests held open inside the
// handler, without timing.
type heldStore struct {
	inside  chan struct{}
	release chan struct{}
}

func newHeldStore() *heldStore {
	return &heldStore{inside: make(chan struct{}, 100), release: make(chan struct{})}
}

func (s *heldStore) accept(ev store.Event, dests []string, _ store.Dedupe) (store.AcceptResult, error) {
	s.inside <- struct{}{}
	<-s.release
	return store.AcceptResult{EventID: "evt_1", Deliveries: len(dests)}, nil
}

func limitedHandler(t *testing.T, acc ingest.Acceptor, edit func(*ingest.Settings)) *ingest.Handler {
	t.Helper()
	s := ingest.Settings{
		Router:         route.New([]config.Route{{WebhookID: "1001", To: []string{"a"}}}),
		MaxBodyBytes:   1 << 20,
		ResponseStatus: http.StatusAccepted,
		DedupeFields:   []string{"mid"},
		DedupeTTL:      time.Hour,
	}
	edit(&s)
	return ingest.NewHandler(acc, s, nil)
}

// serveAsync runs one request in its own goroutine; the returned channel
// yields its answer.
func serveAsync(h http.Handler, req *http.Request) <-chan *httptest.ResponseRecorder {
	done := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		done <- rec
	}()
	return done
}

// refusedBeforeStore serves req and checks it is answered 503 without
// reaching st; a request let through would wait in st, so it fails the
// test instead of hanging it.
func refusedBeforeStore(t *testing.T, what string, h http.Handler, st *heldStore, req *http.Request) {
	t.Helper()
	select {
	case rec := <-serveAsync(h, req):
		wantBusy(t, what, rec)
	case <-st.inside:
		t.Fatalf("%s: the request reached the store past the cap", what)
	}
}

func wantBusy(t *testing.T, what string, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Errorf("%s: status %d, Retry-After %q; want 503 with Retry-After", what, rec.Code, rec.Header().Get("Retry-After"))
	}
}

func TestMaxConcurrent(t *testing.T) {
	st := newHeldStore()
	h := limitedHandler(t, acceptFunc(st.accept), func(s *ingest.Settings) { s.MaxConcurrent = 2 })
	var mu sync.Mutex
	var outcomes []string
	h.OnOutcome = func(o string, _ time.Duration) {
		mu.Lock()
		outcomes = append(outcomes, o)
		mu.Unlock()
	}
	first := serveAsync(h, httptest.NewRequest("POST", "/hooks/1001", strings.NewReader(`{"mid":"1"}`)))
	second := serveAsync(h, httptest.NewRequest("POST", "/hooks/1001", strings.NewReader(`{"mid":"2"}`)))
	<-st.inside
	<-st.inside
	refusedBeforeStore(t, "third at the cap", h, st, httptest.NewRequest("POST", "/hooks/1001", strings.NewReader(`{"mid":"3"}`)))
	close(st.release)
	for _, c := range []<-chan *httptest.ResponseRecorder{first, second} {
		if rec := <-c; rec.Code != http.StatusAccepted {
			t.Errorf("held request: status %d", rec.Code)
		}
	}
	go func() { <-st.inside }()
	if rec := post(h, "/hooks/1001", `{"mid":"4"}`, nil); rec.Code != http.StatusAccepted {
		t.Errorf("after the held ones finished: status %d", rec.Code)
	}
	mu.Lock()
	defer mu.Unlock()
	if outcomes[0] != ingest.OutcomeBusy {
		t.Errorf("outcomes %v, want busy first", outcomes)
	}
}

// TestMaxInflightBytes holds bodies open in two ways, a write the store
// has not finished and a body whose sender withholds the last byte, and
// checks that a body that would take the held bytes past the cap is
// refused before it is read.
func TestMaxInflightBytes(t *testing.T) {
	const size = 600
	body := `{"mid":"` + strings.Repeat("x", size-10) + `"}`
	st := newHeldStore()
	h := limitedHandler(t, acceptFunc(st.accept), func(s *ingest.Settings) {
		s.MaxBodyBytes = 1000
		s.MaxInflightBytes = 1000
	})

	// A store write in progress holds its body.
	held := serveAsync(h, httptest.NewRequest("POST", "/hooks/1001", strings.NewReader(body)))
	<-st.inside
	refusedBeforeStore(t, "while a write holds a body", h, st, httptest.NewRequest("POST", "/hooks/1001", strings.NewReader(body)))

	// Chunked (no Content-Length): reserved as it is read, refused too.
	req := httptest.NewRequest("POST", "/hooks/1001", io.MultiReader(strings.NewReader(body)))
	req.ContentLength = -1
	refusedBeforeStore(t, "chunked while a write holds a body", h, st, req)

	close(st.release)
	if rec := <-held; rec.Code != http.StatusAccepted {
		t.Fatalf("held request: status %d", rec.Code)
	}

	// A slow sender: all but the last byte, then nothing.
	pr, pw := io.Pipe()
	slow := httptest.NewRequest("POST", "/hooks/1001", pr)
	slow.ContentLength = int64(len(body))
	slowDone := serveAsync(h, slow)
	if _, err := pw.Write([]byte(body[:len(body)-1])); err != nil { // returns once the handler has read it
		t.Fatal(err)
	}
	refusedBeforeStore(t, "while a slow body is being read", h, st, httptest.NewRequest("POST", "/hooks/1001", strings.NewReader(body)))
	pw.CloseWithError(io.ErrUnexpectedEOF)
	if rec := <-slowDone; rec.Code != http.StatusBadRequest {
		t.Errorf("slow body cut off: status %d", rec.Code)
	}
	go func() { <-st.inside }()
	if rec := post(h, "/hooks/1001", body, nil); rec.Code != http.StatusAccepted {
		t.Errorf("after the slow body ended: status %d (%s)", rec.Code, rec.Body)
	}
}

func TestRateLimit(t *testing.T) {
	now := time.Unix(1700000000, 0)
	h := limitedHandler(t, acceptFunc(new(recorder).accept), func(s *ingest.Settings) { s.RateLimit = 1 })
	h.Now = func() time.Time { return now }
	from := func(peer string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/hooks/1001", strings.NewReader(`{"mid":"m"}`))
		req.RemoteAddr = peer
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := from("192.0.2.1:1000"); rec.Code != http.StatusAccepted {
		t.Fatalf("first: %d", rec.Code)
	}
	rec := from("192.0.2.1:1001") // another port, same client
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "1" {
		t.Errorf("second within the second: %d, Retry-After %q; want 429, 1", rec.Code, rec.Header().Get("Retry-After"))
	}
	if rec := from("192.0.2.2:1000"); rec.Code != http.StatusAccepted {
		t.Errorf("another client: %d", rec.Code)
	}
	now = now.Add(time.Second)
	if rec := from("192.0.2.1:1000"); rec.Code != http.StatusAccepted {
		t.Errorf("a second later: %d", rec.Code)
	}
}

// TestWritingCountsStoreWrites holds callbacks in the store write: Writing
// counts them while they wait there, and not once they are answered; a
// callback refused before the store (no webhook_id) is never counted.
func TestWritingCountsStoreWrites(t *testing.T) {
	st := newHeldStore()
	h := limitedHandler(t, acceptFunc(st.accept), func(*ingest.Settings) {})
	var answers []<-chan *httptest.ResponseRecorder
	for i := range 3 {
		answers = append(answers, serveAsync(h, httptest.NewRequest("POST", "/hooks/1001", strings.NewReader(`{"mid":"m`+strconv.Itoa(i)+`"}`))))
		<-st.inside
	}
	if got := h.Writing(); got != 3 {
		t.Fatalf("Writing() = %d with 3 callbacks in the store write, want 3", got)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/hooks", strings.NewReader(`{"mid":"x"}`)))
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("a callback without a webhook_id: status %d, want 400", rec.Code)
	}
	if got := h.Writing(); got != 3 {
		t.Fatalf("Writing() = %d after a callback refused before the store, want 3", got)
	}
	close(st.release)
	for _, a := range answers {
		if rec := <-a; rec.Code != http.StatusAccepted {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
	if got := h.Writing(); got != 0 {
		t.Fatalf("Writing() = %d once every write returned, want 0", got)
	}
}
