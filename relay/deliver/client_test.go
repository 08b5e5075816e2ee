package deliver

import (
	"bytes"
	"compress/gzip"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/relay/store"
)

// hops is a receiver whose paths answer as routes says: a path mapped to a
// URL redirects there with the status given, any other path answers 200.
type hops struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
}

func newHops(tb testing.TB, routes func(base string) map[string]struct {
	code int
	to   string
}) *hops {
	tb.Helper()
	h := &hops{}
	var table map[string]struct {
		code int
		to   string
	}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.reqs = append(h.reqs, seen{path: r.Method + " " + r.URL.Path, header: r.Header.Clone(), body: body})
		h.mu.Unlock()
		if rt, ok := table[r.URL.Path]; ok {
			w.Header().Set("Location", rt.to)
			w.WriteHeader(rt.code)
		}
	}))
	tb.Cleanup(h.Close)
	table = routes(h.URL)
	return h
}

func (h *hops) requests() []seen {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]seen(nil), h.reqs...)
}

type hop = struct {
	code int
	to   string
}

func TestFollowRedirects(t *testing.T) {
	other := newSink(t, status(200)) // another host (another port)
	chain := func(n int) func(string) map[string]hop {
		return func(base string) map[string]hop {
			m := map[string]hop{}
			for i := range n {
				m["/r"+strconv.Itoa(i)] = hop{http.StatusTemporaryRedirect, "/r" + strconv.Itoa(i+1)}
			}
			return m
		}
	}
	tests := []struct {
		name      string
		routes    func(base string) map[string]hop
		start     string
		wantState store.DeliveryState
		wantPaths []string // requests this receiver gets in the first attempt
		errHas    string
	}{
		{"307 is followed with the body", func(string) map[string]hop {
			return map[string]hop{"/hook": {307, "/new"}}
		}, "/hook", store.StateDelivered, []string{"POST /hook", "POST /new"}, ""},
		{"301 and 302 re-POST", func(string) map[string]hop {
			return map[string]hop{"/a": {301, "/b"}, "/b": {302, "/c?k=1"}}
		}, "/a", store.StateDelivered, []string{"POST /a", "POST /b", "POST /c"}, ""},
		{"five hops are followed", chain(5), "/r0", store.StateDelivered,
			[]string{"POST /r0", "POST /r1", "POST /r2", "POST /r3", "POST /r4", "POST /r5"}, ""},
		{"a sixth is not", chain(6), "/r0", store.StateDead,
			[]string{"POST /r0", "POST /r1", "POST /r2", "POST /r3", "POST /r4", "POST /r5"}, "5 redirects followed already"},
		{"303 asks for a GET: not followed", func(string) map[string]hop {
			return map[string]hop{"/hook": {303, "/result"}}
		}, "/hook", store.StateDead, []string{"POST /hook"}, "status 303 to http://"},
		{"another scheme: not followed", func(base string) map[string]hop {
			return map[string]hop{"/hook": {308, strings.Replace(base, "http:", "https:", 1) + "/hook"}}
		}, "/hook", store.StateDead, []string{"POST /hook"}, "changes the scheme"},
		{"another host gets no credentials", func(string) map[string]hop {
			return map[string]hop{"/hook": {307, other.URL + "/there"}}
		}, "/hook", store.StateDelivered, []string{"POST /hook"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHops(t, tt.routes)
			d := dest("crm", h.URL+tt.start)
			d.FollowRedirects = true
			d.Retry.MaxAttempts = 1
			d.SigningSecret = vectorSecret
			d.Headers = map[string]string{"Authorization": "Bearer s3cret", "X-Api-Key": "k"}
			st := newTestStore(t)
			body := []byte(`{"mid":"1"}`)
			evID := accept(t, st, store.Event{Body: body, ContentType: "application/json"}, "crm")
			startManager(t, st, []config.Destination{d}, testOptions())

			got := waitState(t, st, evID, "crm", tt.wantState)
			reqs := h.requests()
			var paths []string
			for _, r := range reqs {
				paths = append(paths, r.path)
				if string(r.body) != string(body) || r.header.Get("Authorization") != "Bearer s3cret" {
					t.Errorf("%s: body %q, Authorization %q; want the body and the credentials on the same host", r.path, r.body, r.header.Get("Authorization"))
				}
				checkSignature(t, r, vectorSecret, got.ID)
			}
			if strings.Join(paths, ", ") != strings.Join(tt.wantPaths, ", ") {
				t.Errorf("requests %v, want %v", paths, tt.wantPaths)
			}
			if len(got.AttemptLog) != 1 || !strings.Contains(got.LastError, tt.errHas) {
				t.Errorf("%d attempts, last error %q; want 1 attempt, error containing %q", len(got.AttemptLog), got.LastError, tt.errHas)
			}
			if tt.name == "another host gets no credentials" {
				o := other.requests()
				if len(o) != 1 || o[0].header.Get("Authorization") != "" || o[0].header.Get("X-Api-Key") != "" || string(o[0].body) != string(body) {
					t.Errorf("other host got %d requests, first %+v; want the body without Authorization and X-Api-Key", len(o), o)
				}
			}
		})
	}
}

// writeCert writes srv's certificate as a PEM file and returns its path.
func writeCert(tb testing.TB, srv *httptest.Server) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "ca.pem")
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(path, block, 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

func TestTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(srv.Close)
	ca := writeCert(t, srv)
	tests := []struct {
		name      string
		tls       config.TLS
		wantState store.DeliveryState
		errHas    string
	}{
		{"an unknown CA is refused, and not retried", config.TLS{}, store.StateDead, "certificate"},
		{"ca_file trusts the private CA", config.TLS{CAFile: ca}, store.StateDelivered, ""},
		{"insecure_skip_verify", config.TLS{InsecureSkipVerify: true}, store.StateDelivered, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := dest("crm", srv.URL)
			d.TLS = tt.tls
			st := newTestStore(t)
			evID := accept(t, st, store.Event{Body: []byte("x")}, "crm")
			startManager(t, st, []config.Destination{d}, testOptions())
			got := waitState(t, st, evID, "crm", tt.wantState)
			if got.Attempts != 1 || !strings.Contains(got.LastError, tt.errHas) {
				t.Fatalf("%d attempts, last error %q; want 1, containing %q", got.Attempts, got.LastError, tt.errHas)
			}
		})
	}
}

func TestTLSBadCAFile(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "x.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{filepath.Join(t.TempDir(), "missing.pem"), notPEM} {
		d := dest("crm", "https://127.0.0.1:1/")
		d.TLS.CAFile = file
		if _, err := NewManager(newTestStore(t), []config.Destination{d}, testOptions()); !errors.Is(err, ErrBadDestination) {
			t.Errorf("ca_file %s: err = %v, want ErrBadDestination", filepath.Base(file), err)
		}
	}
}

// TestTimeoutBoundsTheAttempt checks the recorded error of an attempt that
// ran out of time.
func TestTimeoutBoundsTheAttempt(t *testing.T) {
	unblock := make(chan struct{})
	sk := newSink(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-unblock:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(unblock) })
	d := dest("crm", sk.URL)
	d.Timeout = config.Duration(50 * time.Millisecond)
	d.Retry.MaxAttempts = 1
	st := newTestStore(t)
	evID := accept(t, st, store.Event{Body: []byte("x")}, "crm")
	startManager(t, st, []config.Destination{d}, testOptions())
	got := waitState(t, st, evID, "crm", store.StateDead)
	if !strings.Contains(got.LastError, "timed out after 50ms") {
		t.Fatalf("last error %q, want it to say the attempt timed out after 50ms", got.LastError)
	}
}

// TestRelayHeaderNamesAreCanonical guards headers(), which stores these
// names directly instead of through Header.Set.
func TestRelayHeaderNamesAreCanonical(t *testing.T) {
	for _, k := range []string{"Content-Type", "User-Agent", HeaderIdempotencyKey, HeaderEventID, HeaderWebhookIDRelay, HeaderAttempt} {
		if c := http.CanonicalHeaderKey(k); c != k {
			t.Errorf("%q is not canonical (%q)", k, c)
		}
	}
}

// Relay does not ask receivers to compress their answers, and records what
// a receiver sends, compressed or not, as it arrived.
func TestResponsesAreNotDecompressed(t *testing.T) {
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	zw.Write([]byte("plain answer"))
	zw.Close()
	sk := newSink(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(zipped.Bytes())
	})
	st := newTestStore(t)
	evID := accept(t, st, store.Event{Body: []byte("x")}, "crm")
	startManager(t, st, []config.Destination{dest("crm", sk.URL)}, testOptions())
	got := waitState(t, st, evID, "crm", store.StateDelivered)
	if reqs := sk.requests(); len(reqs) != 1 || reqs[0].header.Get("Accept-Encoding") != "" {
		t.Fatalf("requests %+v, want one without Accept-Encoding", reqs)
	}
	// The attempt log keeps text: bytes that are not UTF-8 become U+FFFD.
	want := strings.ToValidUTF8(zipped.String(), "\uFFFD")
	if r := got.AttemptLog[0].Response; r != want {
		t.Errorf("response recorded as %q, want the gzip bytes as sent, %q", r, want)
	}
}
