package relay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/relaytest"
	"github.com/relaygw/relay/relay"
	"github.com/relaygw/relay/relay/store/bolt"
)

// sink is a destination endpoint that records what it receives.
type sink struct {
	*httptest.Server
	mu   sync.Mutex
	got  []received
	seen chan struct{}
}

type received struct {
	header http.Header
	body   []byte
}

func newSink(t testing.TB) *sink {
	t.Helper()
	s := &sink{seen: make(chan struct{}, 1000)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.got = append(s.got, received{header: r.Header.Clone(), body: body})
		s.mu.Unlock()
		s.seen <- struct{}{}
	}))
	t.Cleanup(s.Close)
	return s
}

// waitFor blocks until the sink has received n requests in all.
func (s *sink) waitFor(t testing.TB, n int) []received {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		s.mu.Lock()
		got := append([]received(nil), s.got...)
		s.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-s.seen:
		case <-deadline:
			t.Fatalf("sink %s: got %d requests, want %d", s.URL, len(got), n)
		}
	}
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

// startRelay runs a relay in-process on 127.0.0.1:0 with an embedded store
// in a temp dir. cfgTail holds the routes and destinations; {{a}} and {{b}}
// are replaced by the sinks' URLs.
func startRelay(t *testing.T, cfgTail string, a, b *sink) string {
	t.Helper()
	return startRelayOn(t, "{embedded: {path: "+t.TempDir()+"}}", cfgTail, a, b)
}

// startRelayOn is startRelay on the given store section. Its lease
// is short so that deliveries whose lease reply was lost (a store killed
// mid-call) come back within the tests' deadlines.
func startRelayOn(t *testing.T, storeYAML, cfgTail string, a, b *sink) string {
	t.Helper()
	text := "listen: 127.0.0.1:0\nadmin: {listen: 127.0.0.1:0}\nstore: " + storeYAML + "\n" +
		"delivery: {poll_interval: 50ms, lease: 1s}\n" + cfgTail
	text = strings.NewReplacer("{{a}}", a.URL, "{{b}}", b.URL).Replace(text)
	cfg, err := config.Load([]byte(text), "test.yaml")
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return relaytest.Start(t, cfg, relay.Options{}).Ingest
}

type answer struct {
	Status     string `json:"status"`
	EventID    string `json:"event_id"`
	Deliveries int    `json:"deliveries"`
	Parked     bool   `json:"parked"`
	Error      string `json:"error"`
}

func post(t testing.TB, url, contentType string, body []byte) (int, answer) {
	t.Helper()
	resp, err := http.Post(url, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	var a answer
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatalf("POST %s: answer %q is not JSON: %v", url, raw, err)
	}
	return resp.StatusCode, a
}

func seedBody(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/seed.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const fanOut = `
routes:
  - webhook_id: "1001"
    to: [acme-crm, acme-archive]
  - webhook_id: "1002"
    match: {status: ANSWER, bridge: 918068281234567890123456789}
    to: [acme-crm]
destinations:
  - name: acme-crm
    url: "{{a}}/calls"
    headers: {X-Api-Key: k-123}
    retry: {initial_interval: 10ms, max_interval: 50ms}
  - name: acme-archive
    url: "{{b}}/archive"
    retry: {initial_interval: 10ms, max_interval: 50ms}
`

// TestSeedEndToEnd posts the provider's documented example verbatim and
// checks both fan-out destinations get it byte for byte with Relay's
// headers, and that the provider's retry is answered duplicate and not
// delivered again.
func TestSeedEndToEnd(t *testing.T) {
	crm, archive := newSink(t), newSink(t)
	base := startRelay(t, fanOut, crm, archive)
	body := seedBody(t)

	code, a := post(t, base+"/hooks/1001", "application/json", body)
	if code != http.StatusAccepted || a.Status != "accepted" || a.Deliveries != 2 || a.EventID == "" {
		t.Fatalf("first POST: %d %+v, want 202 accepted with 2 deliveries", code, a)
	}
	for _, s := range []*sink{crm, archive} {
		r := s.waitFor(t, 1)[0]
		if !bytes.Equal(r.body, body) {
			t.Errorf("%s got body %q, want the seed body byte for byte", s.URL, r.body)
		}
		want := map[string]string{
			"Content-Type":       "application/json",
			"Idempotency-Key":    "1234-1333-XXXXX",
			"X-Relay-Event-Id":   a.EventID,
			"X-Relay-Webhook-Id": "1001",
			"X-Relay-Attempt":    "1",
		}
		for k, v := range want {
			if got := r.header.Get(k); got != v {
				t.Errorf("%s header %s = %q, want %q", s.URL, k, got, v)
			}
		}
	}
	if got := crm.waitFor(t, 1)[0].header.Get("X-Api-Key"); got != "k-123" {
		t.Errorf("destination header X-Api-Key = %q, want k-123", got)
	}
	if got := archive.waitFor(t, 1)[0].header.Get("X-Api-Key"); got != "" {
		t.Errorf("acme-archive got acme-crm's header X-Api-Key = %q", got)
	}

	code, dup := post(t, base+"/hooks/1001", "application/json", body)
	if code != http.StatusAccepted || dup.Status != "duplicate" || dup.EventID != a.EventID || dup.Deliveries != 0 {
		t.Fatalf("repeat POST: %d %+v, want 202 duplicate of %s", code, dup, a.EventID)
	}
	// A later distinct event reaching both sinks shows the pipeline moved on;
	// had the duplicate been queued, it would be there too.
	next := bytes.Replace(body, []byte("1234-1333-XXXXX"), []byte("1234-1333-YYYYY"), 1)
	if code, a2 := post(t, base+"/hooks/1001", "application/json", next); code != http.StatusAccepted || a2.Status != "accepted" {
		t.Fatalf("second event: %d %+v", code, a2)
	}
	crm.waitFor(t, 2)
	archive.waitFor(t, 2)
	if crm.count() != 2 || archive.count() != 2 {
		t.Errorf("deliveries: crm %d, archive %d; want 2 each (the duplicate must not be delivered)", crm.count(), archive.count())
	}
}

// TestBadInput sends every kind of bad request and checks its status, that
// nothing already accepted is lost, and that the server stays healthy.
func TestBadInput(t *testing.T) {
	crm, archive := newSink(t), newSink(t)
	base := startRelay(t, "ingest: {max_body_bytes: 2048}\n"+fanOut, crm, archive)

	huge := []byte(`{"status":"ANSWER","bridge":918068281234567890123456789,"mid":"m-huge","n":1e999999}`)
	nonUTF8 := []byte("{\"mid\":\"m-bin\",\"note\":\"\xff\xfe\xc3\x28\"}")
	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        []byte
		wantStatus  int
		accepted    bool // delivered to acme-crm
	}{
		{"oversized", "POST", "/hooks/1001", "application/json", bytes.Repeat([]byte("x"), 4096), 413, false},
		{"wrong method", "GET", "/hooks/1001", "", nil, 405, false},
		{"put method", "PUT", "/hooks/1001", "application/json", []byte(`{}`), 405, false},
		{"no webhook_id", "POST", "/hooks", "application/json", []byte(`{"mid":"x"}`), 400, false},
		{"unreadable JSON, id from body", "POST", "/hooks", "application/json", []byte(`{"webhook_id": "1001"`), 400, false},
		{"unreadable JSON, matcher route", "POST", "/hooks/1002", "application/json", []byte(`{"status": ANSWER!!}`), 400, false},
		{"not JSON, matcher route", "POST", "/hooks/1002", "text/plain", []byte(`status=ANSWER`), 415, false},
		{"unreadable JSON, path route", "POST", "/hooks/1001", "application/json", []byte(`{"mid": "m-broken"`), 202, true},
		{"empty body", "POST", "/hooks/1001", "application/json", nil, 202, true},
		{"huge numbers route by text", "POST", "/hooks/1002", "application/json", huge, 202, true},
		{"non-UTF-8", "POST", "/hooks/1001", "application/json", nonUTF8, 202, true},
		{"id from query", "POST", "/hooks?webhook_id=1001", "application/json", []byte(`{"mid":"m-q"}`), 202, true},
		{"id from form body", "POST", "/hooks", "application/x-www-form-urlencoded", []byte(`webhook_id=1001&mid=m-form`), 202, true},
	}
	var want [][]byte
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, base+tc.path, bytes.NewReader(tc.body))
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, raw, tc.wantStatus)
			}
			var a answer
			if err := json.Unmarshal(raw, &a); err != nil {
				t.Fatalf("answer %q is not JSON", raw)
			}
			if tc.wantStatus >= 400 && a.Error == "" {
				t.Errorf("error answer %q has no message", raw)
			}
			if tc.accepted {
				want = append(want, tc.body)
			}
		})
	}
	got := crm.waitFor(t, len(want))
	for i, w := range want {
		found := false
		for _, r := range got {
			found = found || bytes.Equal(r.body, w)
		}
		if !found {
			t.Errorf("accepted body %d %q never delivered", i, w)
		}
	}
	// Still healthy: a good request goes through.
	if code, a := post(t, base+"/hooks/1001", "application/json", seedBody(t)); code != 202 || a.Status != "accepted" {
		t.Fatalf("after bad input: %d %+v", code, a)
	}
	crm.waitFor(t, len(want)+1)
}

func TestUnmatched(t *testing.T) {
	crm, archive := newSink(t), newSink(t)
	park := startRelay(t, fanOut, crm, archive)
	code, a := post(t, park+"/hooks/9999", "application/json", []byte(`{"mid":"p1"}`))
	if code != 202 || a.Status != "accepted" || !a.Parked || a.Deliveries != 0 {
		t.Errorf("park: %d %+v, want 202 accepted parked", code, a)
	}
	code, a = post(t, park+"/hooks/1002", "application/json", []byte(`{"status":"BUSY"}`))
	if code != 202 || !a.Parked {
		t.Errorf("park on failed matcher: %d %+v", code, a)
	}

	reject := startRelay(t, "ingest: {unmatched: reject}\n"+fanOut, crm, archive)
	code, a = post(t, reject+"/hooks/9999", "application/json", []byte(`{"mid":"p1"}`))
	if code != 404 || a.Error == "" {
		t.Errorf("reject: %d %+v, want 404 with a message", code, a)
	}
}

// TestResponseStatus200 checks the provider can be answered 200 instead.
func TestResponseStatus200(t *testing.T) {
	crm, archive := newSink(t), newSink(t)
	base := startRelay(t, "ingest: {response_status: 200}\n"+fanOut, crm, archive)
	if code, a := post(t, base+"/hooks/1001", "application/json", seedBody(t)); code != 200 || a.Status != "accepted" {
		t.Fatalf("got %d %+v, want 200 accepted", code, a)
	}
	if code, a := post(t, base+"/hooks/1001", "application/json", seedBody(t)); code != 200 || a.Status != "duplicate" {
		t.Fatalf("got %d %+v, want 200 duplicate", code, a)
	}
}

func TestOpenStorePassesEmbeddedRetention(t *testing.T) {
	cfg := config.Store{Embedded: &config.EmbeddedStore{Path: t.TempDir(), Retention: config.Duration(5 * time.Hour)}}
	st, err := relay.OpenStore(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("OpenStore: %v", err)
	}
	defer st.Close()
	b, ok := st.(*bolt.Store)
	if !ok {
		t.Fatalf("OpenStore gave a %T, want the embedded store", st)
	}
	if got := b.Retention(); got != 5*time.Hour {
		t.Fatalf("retention = %v, want the configured 5h", got)
	}
}
