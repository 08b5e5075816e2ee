package admin_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/authguard"
	"github.com/relaygw/relay/relay/admin"
	"github.com/relaygw/relay/relay/ingest"
	"github.com/relaygw/relay/relay/route"
	"github.com/relaygw/relay/relay/state"
	"github.com/relaygw/relay/relay/store"
)

// Every /api route refuses a request without the right bearer token with a
// JSON 401; probes and metrics need no token.
func TestAuth(t *testing.T) {
	a := newAPI(t, func(o *admin.Options) {
		o.Metrics = admin.NewMetrics(admin.MetricsOptions{})
		o.Reload = func(context.Context) (admin.ReloadReport, error) { return admin.ReloadReport{}, nil }
		o.Route = func(store.Event) []string { return nil }
		// Room for every refusal below; TestAuthThrottle counts them.
		o.Throttle = authguard.NewThrottle(authguard.Options{Burst: 1000, Every: time.Minute, MaxSources: 10})
	})
	routes := []struct{ method, path string }{
		{"GET", "/api/events/evt_x"},
		{"GET", "/api/events?mid=x"},
		{"GET", "/api/dlq"},
		{"POST", "/api/dlq/dlv_x/replay"},
		{"POST", "/api/dlq/replay?destination=x"},
		{"DELETE", "/api/dlq/dlv_x"},
		{"GET", "/api/parked"},
		{"POST", "/api/parked/replay"},
		{"POST", "/api/parked/evt_x/replay"},
		{"GET", "/api/destinations"},
		{"POST", "/api/reload"},
		{"GET", "/api/whoami"},
		{"GET", "/api/stats"},
		{"GET", "/api/tail"},
		{"GET", "/api/config"},
		{"GET", "/api/nonexistent"},
	}
	headers := []struct{ name, value string }{
		{"no header", ""},
		{"wrong token", "Bearer nope"},
		{"token prefix", "Bearer " + testToken[:4]},
		{"token and more", "Bearer " + testToken + "x"},
		{"basic scheme", "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+testToken))},
		{"bare token", testToken},
	}
	for _, r := range routes {
		for _, hd := range headers {
			req, _ := http.NewRequest(r.method, a.srv.URL+r.path, nil)
			if hd.value != "" {
				req.Header.Set("Authorization", hd.value)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Content-Type") != "application/json" ||
				!strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s %s with %s: %d %q, want a JSON 401 with WWW-Authenticate", r.method, r.path, hd.name,
					resp.StatusCode, resp.Header.Get("Content-Type"))
			}
		}
		if code, _, body := a.do(r.method, r.path); code == http.StatusUnauthorized {
			t.Errorf("%s %s with the token: 401 %s", r.method, r.path, body)
		}
	}
	a.token = ""
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if code, _, _ := a.do("GET", p); code != http.StatusOK {
			t.Errorf("GET %s without a token: %d, want 200", p, code)
		}
	}
	// An empty token turns auth off (reload may clear it).
	a.h.SetToken("")
	a.json("GET", "/api/dlq", http.StatusOK, nil)
	a.h.SetToken("other")
	a.wantError("GET", "/api/dlq", http.StatusUnauthorized)
}

func TestNotFoundAndMethod(t *testing.T) {
	a := newAPI(t)
	a.wantError("GET", "/api/nonexistent", http.StatusNotFound)
	a.wantError("GET", "/nonexistent", http.StatusNotFound)
	a.wantError("PUT", "/api/dlq", http.StatusMethodNotAllowed)
	a.wantError("GET", "/api/reload", http.StatusMethodNotAllowed)
	// Hooks the relay did not provide answer 501, not a crash.
	a.wantError("POST", "/api/reload", http.StatusNotImplemented)
	a.wantError("POST", "/api/parked/replay", http.StatusNotImplemented)
}

func TestGetEvent(t *testing.T) {
	a := newAPI(t)
	text := []byte(`{"mid":"m-1","status":"ANSWER",}`)
	binary := []byte("{\"mid\":\"m-2\",\"x\":\"\xff\xfe\"}")
	textID := a.accept("1001", "m-1", "application/json", text, "crm", "archive")
	binID := a.accept("1001", "m-2", "application/json", binary, "crm")
	a.complete("crm")
	a.kill("archive", 503, "503 Service Unavailable")

	var ev admin.EventView
	a.json("GET", "/api/events/"+textID, http.StatusOK, &ev)
	if ev.ID != textID || ev.WebhookID != "1001" || ev.DedupeKey != "m-1" || ev.Encoding != admin.BodyText ||
		ev.Body != string(text) || ev.BodyBytes != len(text) || ev.ContentType != "application/json" {
		t.Errorf("event = %+v", ev)
	}
	if ev.Status != store.EventDead || ev.Route.WebhookID != "1001" ||
		strings.Join(ev.Route.Destinations, ",") != "crm,archive" || ev.Route.Parked {
		t.Errorf("status %s, route %+v; want dead, 1001 -> crm,archive", ev.Status, ev.Route)
	}
	if len(ev.Deliveries) != 2 {
		t.Fatalf("%d deliveries, want 2", len(ev.Deliveries))
	}
	for _, d := range ev.Deliveries {
		if len(d.AttemptLog) != 1 || d.Attempts != 1 {
			t.Errorf("delivery %s: %d attempts, log %+v; want 1 of each", d.Destination, d.Attempts, d.AttemptLog)
			continue
		}
		switch at := d.AttemptLog[0]; d.Destination {
		case "crm":
			if d.State != store.StateDelivered || at.Status != 200 || at.Response != "ok" {
				t.Errorf("crm delivery %+v", d)
			}
		case "archive":
			if d.State != store.StateDead || d.LastStatus != 503 || at.Error != "503 Service Unavailable" || at.DurationMS != 1.5 {
				t.Errorf("archive delivery %+v", d)
			}
		}
	}

	a.json("GET", "/api/events/"+binID, http.StatusOK, &ev)
	raw, err := base64.StdEncoding.DecodeString(ev.Body)
	if ev.Encoding != admin.BodyBase64 || err != nil || string(raw) != string(binary) {
		t.Errorf("non-UTF-8 body: encoding %q, body %q (%v); want base64 of the exact bytes", ev.Encoding, ev.Body, err)
	}
	a.wantError("GET", "/api/events/evt_nope", http.StatusNotFound)
}

func TestFindEvents(t *testing.T) {
	a := newAPI(t)
	var ids []string
	for i := range 7 {
		webhook := "1001"
		if i%2 == 1 {
			webhook = "1002"
		}
		ids = append(ids, a.accept(webhook, fmt.Sprintf("m-%d", i), "application/json", []byte("{}"), "crm"))
	}
	parked := a.accept("9999", "m-1", "application/json", []byte("{}"))
	a.kill("crm", 500, "boom") // the oldest, ids[0]

	find := func(query string) []string {
		t.Helper()
		var items []admin.EventSummary
		a.json("GET", "/api/events?"+query, http.StatusOK, &items)
		out := make([]string, len(items))
		for i, it := range items {
			out[i] = it.ID
		}
		return out
	}
	tests := []struct {
		query string
		want  []string
	}{
		{"mid=m-3", []string{ids[3]}},
		{"mid=m-1", []string{parked, ids[1]}},
		{"mid=m-1&webhook_id=1002", []string{ids[1]}},
		{"dedupe_key=m-4", []string{ids[4]}},
		{"webhook_id=1001&limit=2", []string{ids[6], ids[4]}},
		{"status=dead", []string{ids[0]}},
		{"status=parked", []string{parked}},
		{"since=1h&webhook_id=9999", []string{parked}},
		{"since=" + url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339)), []string{}},
		{"mid=nope", []string{}},
	}
	for _, tc := range tests {
		if got := find(tc.query); strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("GET /api/events?%s = %v, want %v", tc.query, got, tc.want)
		}
	}

	var first []admin.EventSummary
	a.json("GET", "/api/events?mid=m-0", http.StatusOK, &first)
	if len(first) != 1 || first[0].Status != store.EventDead || len(first[0].Deliveries) != 1 ||
		first[0].Deliveries[0].LastError != "boom" || first[0].Deliveries[0].AttemptLog != nil {
		t.Errorf("summary = %+v, want dead with one delivery, no attempt log", first)
	}

	all, n := pages[admin.EventSummary](a, "/api/events?limit=3")
	if len(all) != 8 || n != 3 || all[0].ID != parked || all[7].ID != ids[0] {
		t.Errorf("paged search: %d items in %d pages, want 8 in 3, newest first", len(all), n)
	}
	for _, bad := range []string{"status=lost", "limit=0", "limit=5000", "limit=x", "since=yesterday", "since=-1h"} {
		a.wantError("GET", "/api/events?"+bad, http.StatusBadRequest)
	}
	a.wantError("GET", "/api/events?cursor=!!!", http.StatusBadRequest)
}

func TestDLQ(t *testing.T) {
	a := newAPI(t)
	var crm, archive []string
	for i := range 5 {
		a.accept("1001", fmt.Sprintf("m-%d", i), "application/json", []byte("{}"), "crm", "archive")
		crm = append(crm, a.kill("crm", 0, "dial tcp: connection refused").ID)
		if i < 2 {
			archive = append(archive, a.kill("archive", 500, "500 Internal Server Error").ID)
		}
	}

	items, n := pages[map[string]any](a, "/api/dlq?destination=crm&limit=2")
	if len(items) != 5 || n != 3 {
		t.Fatalf("crm DLQ: %d items in %d pages, want 5 in 3", len(items), n)
	}
	for i, it := range items {
		// The SPEC's fields, present even when zero.
		for _, f := range []string{"id", "destination", "event_id", "attempts", "last_status", "last_error"} {
			if _, ok := it[f]; !ok {
				t.Fatalf("DLQ item %v has no %q", it, f)
			}
		}
		if it["id"] != crm[i] || it["destination"] != "crm" || it["attempts"] != 1.0 || it["last_status"] != 0.0 ||
			it["last_error"] != "dial tcp: connection refused" {
			t.Errorf("DLQ item %d = %v", i, it)
		}
	}
	if all, _ := pages[admin.DeliveryView](a, "/api/dlq"); len(all) != 7 {
		t.Errorf("whole DLQ has %d items, want 7", len(all))
	}
	a.wantError("GET", "/api/dlq?cursor=!!!", http.StatusBadRequest)

	// One replay queues the delivery; a second finds nothing to replay.
	var ok map[string]string
	a.json("POST", "/api/dlq/"+crm[0]+"/replay", http.StatusOK, &ok)
	if ok["status"] != "replayed" || ok["id"] != crm[0] {
		t.Errorf("replay answer %v", ok)
	}
	a.wantError("POST", "/api/dlq/"+crm[0]+"/replay", http.StatusNotFound)
	if d := a.depths(); d.Queued["crm"] != 1 || d.Dead["crm"] != 4 {
		t.Fatalf("after one replay: queued %v dead %v", d.Queued, d.Dead)
	}
	if a.woken.Load() == 0 {
		t.Error("a replay woke no workers")
	}

	a.json("DELETE", "/api/dlq/"+crm[1], http.StatusOK, &ok)
	a.wantError("DELETE", "/api/dlq/"+crm[1], http.StatusNotFound)
	a.wantError("POST", "/api/dlq/"+crm[1]+"/replay", http.StatusNotFound)

	var res admin.ReplayResult
	a.json("POST", "/api/dlq/replay?destination=crm", http.StatusOK, &res)
	if res.Replayed != 3 || res.Skipped != 0 || len(res.Failed) != 0 {
		t.Errorf("bulk replay of crm = %+v, want 3 replayed", res)
	}
	a.json("POST", "/api/dlq/replay?destination=crm", http.StatusOK, &res)
	if res.Replayed != 0 {
		t.Errorf("second bulk replay replayed %d", res.Replayed)
	}
	if d := a.depths(); d.Queued["crm"] != 4 || d.Dead["crm"] != 0 || d.Dead["archive"] != 2 {
		t.Fatalf("after bulk replay: queued %v dead %v; want crm 4 queued, archive 2 dead", d.Queued, d.Dead)
	}
	a.json("POST", "/api/dlq/replay", http.StatusOK, &res)
	if res.Replayed != 2 {
		t.Errorf("replay of every destination = %+v, want archive's 2", res)
	}
	// archive had 3 deliveries that never failed, plus the 2 replayed.
	if d := a.depths(); d.Queued["archive"] != 5 || len(d.Dead) != 0 {
		t.Fatalf("after replaying all: queued %v dead %v", d.Queued, d.Dead)
	}
}

func TestParked(t *testing.T) {
	// The routes as they are after a reload: 1001 goes to crm, 1002 only
	// when status is ANSWER (read again from the stored body).
	table := route.New([]config.Route{
		{WebhookID: "1001", To: []string{"crm"}},
		{WebhookID: "1002", Match: map[string]string{"status": "ANSWER"}, To: []string{"crm", "archive"}},
	})
	a := newAPI(t, func(o *admin.Options) {
		o.Route = func(ev store.Event) []string {
			var f ingest.Fields
			if ingest.Kind(ev.ContentType, ev.Body) == ingest.KindJSON {
				f, _ = ingest.ExtractJSON(ev.Body)
			}
			return table.Match(ev.WebhookID, f)
		}
	})
	p1 := a.accept("1001", "", "application/json", []byte(`{"mid":"a"}`))
	p2 := a.accept("1002", "", "application/json", []byte(`{"status":"ANSWER",}`))
	p3 := a.accept("1002", "", "application/json", []byte(`{"status":"BUSY"}`))
	p4 := a.accept("7777", "", "text/plain", []byte("\xff"))

	items, n := pages[admin.ParkedView](a, "/api/parked?limit=3")
	if len(items) != 4 || n != 2 || items[0].ID != p1 || items[3].ID != p4 || items[3].Encoding != admin.BodyBase64 {
		t.Fatalf("parked list: %d items in %d pages: %+v", len(items), n, items)
	}
	var res admin.ReplayResult
	a.json("POST", "/api/parked/"+p1+"/replay", http.StatusOK, &res)
	if res.Replayed != 1 || res.Deliveries != 1 {
		t.Errorf("single replay = %+v", res)
	}
	a.wantError("POST", "/api/parked/"+p1+"/replay", http.StatusNotFound)

	a.json("POST", "/api/parked/replay", http.StatusOK, &res)
	if res.Replayed != 1 || res.Deliveries != 2 || res.StillParked != 2 {
		t.Errorf("bulk replay = %+v, want p2 routed to 2 destinations, 2 still parked", res)
	}
	left, _ := pages[admin.ParkedView](a, "/api/parked")
	if len(left) != 2 || left[0].ID != p3 || left[1].ID != p4 {
		t.Errorf("still parked: %+v, want %s %s", left, p3, p4)
	}
	var ev admin.EventView
	a.json("GET", "/api/events/"+p2, http.StatusOK, &ev)
	if ev.Route.Parked || strings.Join(ev.Route.Destinations, ",") != "crm,archive" || ev.Status != store.EventPending {
		t.Errorf("replayed event: %+v", ev.Route)
	}
	if d := a.depths(); d.Queued["crm"] != 2 || d.Queued["archive"] != 1 || d.Parked != 2 {
		t.Errorf("depths after replays: %+v", d)
	}
}

func TestDestinations(t *testing.T) {
	last := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	a := newAPI(t, func(o *admin.Options) {
		o.Destinations = func() []state.Destination {
			return []state.Destination{
				{Name: "crm", InFlight: 2, Circuit: "open", ConsecutiveFailures: 5, LastFailure: last, LastError: "503"},
				{Name: "archive", Circuit: "closed", LastSuccess: last},
			}
		}
	})
	a.accept("1001", "", "application/json", []byte("{}"), "crm", "archive", "gone")
	a.accept("1001", "", "application/json", []byte("{}"), "crm")
	a.kill("archive", 500, "x")

	var got []map[string]any
	a.json("GET", "/api/destinations", http.StatusOK, &got)
	want := []string{
		"map[circuit:open configured:true consecutive_failures:5 dead:0 in_flight:2 last_error:503 last_failure:2024-05-01T10:00:00Z name:crm queued:2]",
		"map[circuit:closed configured:true consecutive_failures:0 dead:1 in_flight:0 last_success:2024-05-01T10:00:00Z name:archive queued:0]",
		"map[configured:false consecutive_failures:0 dead:0 in_flight:0 name:gone queued:1]",
	}
	if len(got) != len(want) {
		t.Fatalf("destinations = %v", got)
	}
	for i := range want {
		if s := fmt.Sprint(got[i]); s != want[i] {
			t.Errorf("destination %d = %s\nwant %s", i, s, want[i])
		}
	}
}

func TestReloadRoute(t *testing.T) {
	var fail atomic.Pointer[error]
	a := newAPI(t, func(o *admin.Options) {
		o.Reload = func(context.Context) (admin.ReloadReport, error) {
			if err := fail.Load(); err != nil {
				return admin.ReloadReport{}, *err
			}
			return admin.ReloadReport{File: "relay.yaml", Routes: 2, Added: []string{"new"}}, nil
		}
	})
	var rep admin.ReloadReport
	a.json("POST", "/api/reload", http.StatusOK, &rep)
	if rep.Routes != 2 || rep.Added[0] != "new" {
		t.Errorf("report %+v", rep)
	}
	var bad error = config.Errors{{File: "relay.yaml", Line: 7, Msg: `unknown key "retyr"`}, {File: "relay.yaml", Line: 9, Msg: "bad url"}}
	fail.Store(&bad)
	var e struct {
		Error    string
		Problems []string
	}
	a.json("POST", "/api/reload", http.StatusBadRequest, &e)
	if len(e.Problems) != 2 || e.Problems[0] != `relay.yaml:7: unknown key "retyr"` || !strings.Contains(e.Error, "running config stays") {
		t.Errorf("refused reload answer %+v", e)
	}
	fire := errors.New("disk on fire")
	fail.Store(&fire)
	a.wantError("POST", "/api/reload", http.StatusInternalServerError)
}

func TestReadyz(t *testing.T) {
	var draining atomic.Bool
	a := newAPI(t, func(o *admin.Options) { o.Draining = draining.Load })
	a.json("GET", "/readyz", http.StatusOK, nil)
	draining.Store(true)
	a.json("GET", "/readyz", http.StatusServiceUnavailable, nil)
	draining.Store(false)
	a.st.Close()
	a.json("GET", "/readyz", http.StatusServiceUnavailable, nil)
	a.json("GET", "/healthz", http.StatusOK, nil)
	a.wantError("GET", "/api/dlq", http.StatusServiceUnavailable)
}

// TestStarting: while the store opens, only /healthz answers 200; every
// other path, method and token gets 503 with Retry-After and says why.
func TestStarting(t *testing.T) {
	h := admin.Starting()
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/healthz", http.StatusOK},
		{"HEAD", "/healthz", http.StatusOK},
		{"POST", "/healthz", http.StatusServiceUnavailable},
		{"GET", "/readyz", http.StatusServiceUnavailable},
		{"GET", "/metrics", http.StatusServiceUnavailable},
		{"GET", "/api/dlq", http.StatusServiceUnavailable},
		{"POST", "/api/reload", http.StatusServiceUnavailable},
		{"GET", "/ui/", http.StatusServiceUnavailable},
	} {
		req := httptest.NewRequest(tc.method, tc.path, nil)
		req.Header.Set("Authorization", "Bearer anything")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want || !strings.Contains(rec.Body.String(), `"starting"`) && tc.method != "HEAD" {
			t.Errorf("%s %s: %d %s, want %d and status starting", tc.method, tc.path, rec.Code, rec.Body, tc.want)
		}
		if tc.want == http.StatusServiceUnavailable && rec.Header().Get("Retry-After") == "" {
			t.Errorf("%s %s: no Retry-After", tc.method, tc.path)
		}
	}
}

// TestAuthThrottle: a source that sent the wrong token burst times is
// answered 429 with Retry-After, even with the right token, which is not
// looked at, until the clock forgives a failure. Bearer is matched in any
// case.
func TestAuthThrottle(t *testing.T) {
	th, advance := clockedThrottle(3, 20*time.Second)
	a := newAPI(t, func(o *admin.Options) { o.Throttle = th })
	send := func(auth string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", a.srv.URL+"/api/dlq", nil)
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	for _, auth := range []string{"bearer " + testToken, "BEARER " + testToken, "Bearer " + testToken} {
		if code, _ := send(auth); code != http.StatusOK {
			t.Errorf("%q: %d, want 200", auth, code)
		}
	}
	var codes []int
	for range 3 {
		code, _ := send("Bearer wrong")
		codes = append(codes, code)
	}
	code, retry := send("Bearer " + testToken)
	codes = append(codes, code)
	if fmt.Sprint(codes) != "[401 401 401 429]" || retry != "20" {
		t.Fatalf("answers %v, Retry-After %q; want three 401s, then 429 with Retry-After 20 for the right token", codes, retry)
	}
	advance(20 * time.Second)
	if code, _ := send("Bearer " + testToken); code != http.StatusOK {
		t.Errorf("after Retry-After: %d, want 200", code)
	}
}
