package ingest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/relay/ingest"
	"github.com/relaygw/relay/relay/route"
	"github.com/relaygw/relay/relay/store"
)

// acceptFunc adapts a function to ingest.Acceptor. The real stores are
// exercised end to end in package relay; here the store's answer is what is
// under control.
type acceptFunc func(ev store.Event, dests []string, dd store.Dedupe) (store.AcceptResult, error)

func (f acceptFunc) Accept(_ context.Context, ev store.Event, dests []string, dd store.Dedupe) (store.AcceptResult, error) {
	return f(ev, dests, dd)
}

func newHandler(t *testing.T, acc ingest.Acceptor) (*ingest.Handler, *[]string) {
	t.Helper()
	h := ingest.NewHandler(acc, ingest.Settings{
		Router:         route.New([]config.Route{{WebhookID: "1001", To: []string{"a", "b"}}}),
		MaxBodyBytes:   1 << 20,
		ResponseStatus: http.StatusAccepted,
		DedupeFields:   []string{"mid"},
		DedupeTTL:      time.Hour,
	}, nil)
	var mu sync.Mutex
	outcomes := []string{}
	h.OnOutcome = func(o string, _ time.Duration) {
		mu.Lock()
		outcomes = append(outcomes, o)
		mu.Unlock()
	}
	return h, &outcomes
}

func TestStoreRefusalIs503(t *testing.T) {
	for _, err := range []error{store.ErrUnavailable, fmt.Errorf("bolt: commit: %w", store.ErrUnavailable), errors.New("disk on fire")} {
		h, outcomes := newHandler(t, acceptFunc(func(store.Event, []string, store.Dedupe) (store.AcceptResult, error) {
			return store.AcceptResult{}, err
		}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/hooks/1001", strings.NewReader(`{"mid":"x"}`)))
		if rec.Code != http.StatusServiceUnavailable {
			t.Errorf("store error %v: status %d, want 503", err, rec.Code)
		}
		if strings.Contains(rec.Body.String(), "fire") {
			t.Errorf("store error text leaked to the provider: %s", rec.Body)
		}
		if len(*outcomes) != 1 || (*outcomes)[0] != ingest.OutcomeError {
			t.Errorf("outcomes %v, want [error]", *outcomes)
		}
	}
}

// TestAnswersOnlyAfterWrite holds the store write open and checks that the
// client was sent nothing (no status, no body byte, no flush) until it
// returned, and that the answer came after.
func TestAnswersOnlyAfterWrite(t *testing.T) {
	inside, release := make(chan struct{}), make(chan struct{})
	h, _ := newHandler(t, acceptFunc(func(ev store.Event, dests []string, dd store.Dedupe) (store.AcceptResult, error) {
		close(inside)
		<-release
		return store.AcceptResult{EventID: "evt_1", Deliveries: len(dests)}, nil
	}))
	w := &watchedWriter{rec: httptest.NewRecorder()}
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(w, httptest.NewRequest("POST", "/hooks/1001", strings.NewReader(`{"mid":"x"}`)))
	}()
	select {
	case <-inside:
	case <-done:
		t.Fatal("handler returned without calling the store")
	}
	// The handler goroutine is parked in Accept: whatever it sent before is
	// recorded by now.
	if sent := w.sent(); len(sent) != 0 {
		t.Fatalf("sent to the client while the write was still running: %v", sent)
	}
	close(release)
	<-done
	if w.rec.Code != http.StatusAccepted || !strings.Contains(w.rec.Body.String(), `"evt_1"`) {
		t.Fatalf("answer after the write: status %d, body %q", w.rec.Code, w.rec.Body)
	}
}

// watchedWriter records every call that sends something to the client.
type watchedWriter struct {
	rec *httptest.ResponseRecorder

	mu    sync.Mutex
	calls []string
}

func (w *watchedWriter) note(call string) {
	w.mu.Lock()
	w.calls = append(w.calls, call)
	w.mu.Unlock()
}

func (w *watchedWriter) sent() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.calls...)
}

func (w *watchedWriter) Header() http.Header { return w.rec.Header() }

func (w *watchedWriter) WriteHeader(status int) {
	w.note(fmt.Sprintf("WriteHeader(%d)", status))
	w.rec.WriteHeader(status)
}

func (w *watchedWriter) Write(b []byte) (int, error) {
	w.note(fmt.Sprintf("Write(%q)", b))
	return w.rec.Write(b)
}

func (w *watchedWriter) Flush() {
	w.note("Flush()")
	w.rec.Flush()
}

// TestAcceptArguments checks what ingest hands the store: the original body
// and content type, the dedupe value and a claim key scoped by webhook_id.
func TestAcceptArguments(t *testing.T) {
	var got store.Event
	var gotDests []string
	var gotDD store.Dedupe
	h, _ := newHandler(t, acceptFunc(func(ev store.Event, dests []string, dd store.Dedupe) (store.AcceptResult, error) {
		got, gotDests, gotDD = ev, dests, dd
		return store.AcceptResult{EventID: "evt_1", Deliveries: len(dests)}, nil
	}))
	body := "{ \"mid\" : \"m-1\", \"n\": 123456789012345678901234567890, }"
	req := httptest.NewRequest("POST", "/hooks/1001", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)

	var a struct {
		Status     string `json:"status"`
		EventID    string `json:"event_id"`
		Deliveries int    `json:"deliveries"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil || a.Status != "accepted" || a.EventID != "evt_1" || a.Deliveries != 2 {
		t.Fatalf("answer %s (%v)", rec.Body, err)
	}
	if string(got.Body) != body || got.ContentType != "application/json; charset=utf-8" || got.WebhookID != "1001" {
		t.Errorf("event %+v", got)
	}
	if got.DedupeKey != "m-1" || gotDD.Key == "" || !strings.Contains(gotDD.Key, "1001") || gotDD.TTL != time.Hour {
		t.Errorf("dedupe value %q, claim %+v", got.DedupeKey, gotDD)
	}
	if strings.Join(gotDests, ",") != "a,b" {
		t.Errorf("dests %v", gotDests)
	}
}

// TestNoDedupeWithoutField checks an event lacking the dedupe field is
// stored without a claim, so it is never dropped as a duplicate.
func TestNoDedupeWithoutField(t *testing.T) {
	var gotDD store.Dedupe
	h, _ := newHandler(t, acceptFunc(func(ev store.Event, dests []string, dd store.Dedupe) (store.AcceptResult, error) {
		gotDD = dd
		return store.AcceptResult{EventID: "evt_1", Deliveries: 2}, nil
	}))
	for _, body := range []string{`{"status":"ANSWER"}`, `{"mid":""}`, `{"mid":null}`, ``} {
		gotDD = store.Dedupe{Key: "unset"}
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/hooks/1001", strings.NewReader(body)))
		if gotDD.Key != "" {
			t.Errorf("body %q: claim %q, want none", body, gotDD.Key)
		}
	}
}

// TestRoutes checks which method and path reach the hook handler and which
// webhook_id the store sees.
func TestRoutes(t *testing.T) {
	tests := []struct {
		method, target string
		status         int
		webhookID      string // what Accept got, "" when not called
	}{
		{"POST", "/hooks/1001", 202, "1001"},
		{"POST", "/hooks?webhook_id=1001", 202, "1001"},
		{"POST", "/hooks/1001?webhook_id=2002", 202, "1001"},
		{"POST", "/hooks/caf%C3%A9", 202, "café"},
		{"POST", "/hooks", 400, ""},
		{"POST", "/hooks/", 404, ""},
		{"POST", "/hooks/1001/", 404, ""},
		{"POST", "/hooks/10/01", 404, ""},
		{"POST", "/hooksx", 404, ""},
		{"POST", "/", 404, ""},
		{"GET", "/hooks/1001", 405, ""},
		{"PUT", "/hooks", 405, ""},
		{"GET", "/elsewhere", 404, ""},
	}
	for _, tt := range tests {
		var got string
		h, _ := newHandler(t, acceptFunc(func(ev store.Event, dests []string, _ store.Dedupe) (store.AcceptResult, error) {
			got = ev.WebhookID
			return store.AcceptResult{EventID: "evt_1", Deliveries: len(dests)}, nil
		}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.target, strings.NewReader(`{"mid":"m-1"}`)))
		if rec.Code != tt.status || got != tt.webhookID {
			t.Errorf("%s %s: status %d, webhook_id %q; want %d, %q", tt.method, tt.target, rec.Code, got, tt.status, tt.webhookID)
		}
		if tt.status == 405 && rec.Header().Get("Allow") != "POST" {
			t.Errorf("%s %s: Allow %q, want POST", tt.method, tt.target, rec.Header().Get("Allow"))
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: Content-Type %q", tt.method, tt.target, ct)
		}
	}
}

// deadlineAcceptor records the deadline of the context a write gets.
type deadlineAcceptor struct{ deadline time.Time }

func (a *deadlineAcceptor) Accept(ctx context.Context, _ store.Event, _ []string, _ store.Dedupe) (store.AcceptResult, error) {
	a.deadline, _ = ctx.Deadline()
	return store.AcceptResult{EventID: "e1", Deliveries: 2}, nil
}

// Settings without a write timeout bound the store write by
// store.write_timeout's default, the one config/defaults.go states, not a
// second default of ingest's own.
func TestWriteTimeoutDefault(t *testing.T) {
	acc := &deadlineAcceptor{}
	h, _ := newHandler(t, acc)
	before := time.Now()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/hooks/1001", strings.NewReader(`{"mid":"x"}`)))
	if rec.Code != http.StatusAccepted {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if acc.deadline.IsZero() || acc.deadline.After(time.Now().Add(config.DefaultWriteTimeout)) ||
		acc.deadline.Before(before.Add(config.DefaultWriteTimeout)) {
		t.Errorf("store write deadline %v after the request, want config.DefaultWriteTimeout (%v)",
			acc.deadline.Sub(before), config.DefaultWriteTimeout)
	}
}
