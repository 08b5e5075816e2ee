package admin_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/relay/admin"
	"github.com/relaygw/relay/relay/state"
	"github.com/relaygw/relay/relay/store"
)

const (
	acmeToken   = "acme-portal-token-0123456789"
	globexToken = "globex-portal-token-012345678"
)

// portalAPI is an admin API with two portals: acme sees crm and archive,
// globex sees ledger.
func portalAPI(t *testing.T, mod ...func(*admin.Options)) *api {
	t.Helper()
	return newAPI(t, append([]func(*admin.Options){func(o *admin.Options) {
		o.Portals = []admin.Portal{
			{Name: "acme", Token: acmeToken, Destinations: []string{"crm", "archive"}},
			{Name: "globex", Token: globexToken, Destinations: []string{"ledger"}},
		}
		o.Metrics = admin.NewMetrics(admin.MetricsOptions{})
		o.Reload = func(context.Context) (admin.ReloadReport, error) { return admin.ReloadReport{}, nil }
		o.Route = func(store.Event) []string { return nil }
		o.Tail = admin.NewTail(0)
		o.Config = func() *config.Config { return &config.Config{} }
		o.Destinations = func() []state.Destination {
			return []state.Destination{{Name: "crm"}, {Name: "archive"}, {Name: "ledger"}}
		}
	}}, mod...)...)
}

// as returns a copy of a that sends token.
func (a *api) as(token string) *api {
	return &api{t: a.t, st: a.st, h: a.h, srv: a.srv, token: token}
}

func TestWhoami(t *testing.T) {
	a := portalAPI(t)
	var who map[string]any
	a.json("GET", "/api/whoami", http.StatusOK, &who)
	if who["role"] != "admin" {
		t.Errorf("admin whoami = %v", who)
	}
	a.as(acmeToken).json("GET", "/api/whoami", http.StatusOK, &who)
	if who["role"] != "portal" || who["portal"] != "acme" || strings.Join(toStrings(who["destinations"]), ",") != "crm,archive" {
		t.Errorf("acme whoami = %v", who)
	}
	a.as("acme-portal-token-012345678x").wantError("GET", "/api/whoami", http.StatusUnauthorized)
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// A portal token reaches only its own destinations' deliveries, events,
// dead letters and replays, and no other route.
func TestPortalScope(t *testing.T) {
	a := portalAPI(t)
	both := a.accept("1001", "m-both", "application/json", []byte(`{"mid":"m-both"}`), "crm", "ledger")
	theirs := a.accept("1001", "m-theirs", "application/json", []byte(`{"mid":"m-theirs"}`), "ledger")
	parked := a.accept("9999", "m-parked", "application/json", []byte(`{}`))
	crmDead := a.kill("crm", 500, "boom").ID
	ledgerDead := a.kill("ledger", 500, "boom").ID
	a.kill("ledger", 500, "boom")
	acme := a.as(acmeToken)

	t.Run("other clients' ids are not found", func(t *testing.T) {
		// The same answer as an id that does not exist, so that a portal
		// cannot tell another client's ids from made-up ones.
		for _, r := range []struct{ method, path, missing string }{
			{"GET", "/api/events/" + theirs, "/api/events/evt_made_up"},
			{"GET", "/api/events/" + parked, "/api/events/evt_made_up"},
			{"POST", "/api/dlq/" + ledgerDead + "/replay", "/api/dlq/dlv_made_up/replay"},
		} {
			got := acme.wantError(r.method, r.path, http.StatusNotFound)
			want := acme.wantError(r.method, r.missing, http.StatusNotFound)
			id := strings.Split(strings.TrimPrefix(r.path, "/api/"), "/")[1]
			missing := strings.Split(strings.TrimPrefix(r.missing, "/api/"), "/")[1]
			if strings.ReplaceAll(got, id, missing) != want {
				t.Errorf("%s %s answered %q; a missing id gets %q", r.method, r.path, got, want)
			}
		}
		if d := a.depths(); d.Dead["ledger"] != 2 {
			t.Fatalf("a refused replay changed the DLQ: %v", d.Dead)
		}
	})

	t.Run("forbidden routes", func(t *testing.T) {
		for _, r := range []struct{ method, path string }{
			{"POST", "/api/dlq/replay?destination=ledger"},
			{"GET", "/api/dlq?destination=ledger"},
			{"DELETE", "/api/dlq/" + crmDead},
			{"GET", "/api/parked"},
			{"POST", "/api/parked/replay"},
			{"POST", "/api/parked/" + parked + "/replay"},
			{"GET", "/api/config"},
			{"POST", "/api/reload"},
			{"GET", "/api/nonexistent"},
			{"GET", "/metrics"},
		} {
			acme.wantError(r.method, r.path, http.StatusForbidden)
		}
		if d := a.depths(); d.Dead["ledger"] != 2 || d.Dead["crm"] != 1 {
			t.Fatalf("a refused call changed the DLQ: %v", d.Dead)
		}
		// The same routes answer the admin token (not 401 or 403).
		for _, p := range []string{"/api/config", "/api/parked", "/api/events/" + theirs, "/metrics"} {
			if code, _, body := a.do("GET", p); code != http.StatusOK {
				t.Errorf("admin GET %s: %d %s", p, code, body)
			}
		}
	})

	t.Run("event shows only its deliveries", func(t *testing.T) {
		var ev admin.EventView
		acme.json("GET", "/api/events/"+both, http.StatusOK, &ev)
		if len(ev.Deliveries) != 1 || ev.Deliveries[0].Destination != "crm" ||
			strings.Join(ev.Route.Destinations, ",") != "crm" || ev.Status != store.EventDead || ev.Body != `{"mid":"m-both"}` {
			t.Errorf("acme's view of the event: status %s, route %v, deliveries %+v", ev.Status, ev.Route, ev.Deliveries)
		}
		var all admin.EventView
		a.json("GET", "/api/events/"+both, http.StatusOK, &all)
		if len(all.Deliveries) != 2 {
			t.Errorf("admin sees %d deliveries, want 2", len(all.Deliveries))
		}
	})

	t.Run("search", func(t *testing.T) {
		var items []admin.EventSummary
		acme.json("GET", "/api/events", http.StatusOK, &items)
		if len(items) != 1 || items[0].ID != both || len(items[0].Deliveries) != 1 || items[0].Deliveries[0].Destination != "crm" {
			t.Errorf("acme's search = %+v, want only %s with its crm delivery", items, both)
		}
		acme.json("GET", "/api/events?mid=m-theirs", http.StatusOK, &items)
		if len(items) != 0 {
			t.Errorf("acme finds another client's event: %+v", items)
		}
		// The status is that of acme's deliveries: crm's is dead.
		acme.json("GET", "/api/events?status=dead", http.StatusOK, &items)
		if len(items) != 1 {
			t.Errorf("acme's dead events = %+v, want 1", items)
		}
		var globex []admin.EventSummary
		a.as(globexToken).json("GET", "/api/events", http.StatusOK, &globex)
		if len(globex) != 2 {
			t.Errorf("globex finds %d events, want 2", len(globex))
		}
	})

	t.Run("dlq and destinations", func(t *testing.T) {
		var dlq []admin.DeliveryView
		acme.json("GET", "/api/dlq", http.StatusOK, &dlq)
		if len(dlq) != 1 || dlq[0].ID != crmDead {
			t.Errorf("acme's DLQ = %+v, want only %s", dlq, crmDead)
		}
		var dests []state.Destination
		acme.json("GET", "/api/destinations", http.StatusOK, &dests)
		var names []string
		for _, d := range dests {
			names = append(names, d.Name)
		}
		if strings.Join(names, ",") != "crm,archive" {
			t.Errorf("acme's destinations = %v", names)
		}
		var st admin.Stats
		acme.json("GET", "/api/stats", http.StatusOK, &st)
		if st.Dead != 1 || st.Ingest != nil || st.Parked != nil || len(st.Destinations) != 2 {
			t.Errorf("acme's stats = %+v; want its 1 dead, no ingest or parked counts", st)
		}
	})

	t.Run("replay own", func(t *testing.T) {
		var res admin.ReplayResult
		acme.json("POST", "/api/dlq/replay", http.StatusOK, &res)
		if res.Replayed != 1 {
			t.Errorf("acme's replay-all = %+v, want its 1", res)
		}
		if d := a.depths(); d.Dead["ledger"] != 2 || d.Dead["crm"] != 0 {
			t.Errorf("after acme's replay-all: dead %v; want ledger's 2 untouched", d.Dead)
		}
		a.wantError("POST", "/api/dlq/dlv_nope/replay", http.StatusNotFound)
		acme.wantError("POST", "/api/dlq/dlv_nope/replay", http.StatusNotFound)
		g := a.as(globexToken)
		var ok map[string]string
		g.json("POST", "/api/dlq/"+ledgerDead+"/replay", http.StatusOK, &ok)
		if d := a.depths(); d.Dead["ledger"] != 1 {
			t.Errorf("after globex's replay: dead %v", d.Dead)
		}
	})

	// A reload that drops the portal ends its access.
	a.h.SetPortals(nil)
	acme.wantError("GET", "/api/whoami", http.StatusUnauthorized)
}

// A replayed delivery's attempts are numbered from 1 again by the store;
// the API marks which replay each belongs to.
func TestEventMarksReplays(t *testing.T) {
	a := newAPI(t)
	id := a.accept("1001", "m-1", "application/json", []byte("{}"), "crm")
	d := a.kill("crm", 500, "first run")
	var ok map[string]string
	a.json("POST", "/api/dlq/"+d.ID+"/replay", http.StatusOK, &ok)
	a.kill("crm", 502, "after the replay")
	a.json("POST", "/api/dlq/"+d.ID+"/replay", http.StatusOK, &ok)
	a.complete("crm")

	var ev admin.EventView
	a.json("GET", "/api/events/"+id, http.StatusOK, &ev)
	dv := ev.Deliveries[0]
	var got []string
	for _, at := range dv.AttemptLog {
		got = append(got, strings.Join([]string{strconv.Itoa(at.Replay), strconv.Itoa(at.N), strconv.Itoa(at.Status)}, "/"))
	}
	if want := "0/1/500 1/1/502 2/1/200"; strings.Join(got, " ") != want || dv.Replays != 2 {
		t.Errorf("attempts (replay/n/status) = %v, replays %d; want %s, 2", got, dv.Replays, want)
	}
}

func TestFindEventsUntil(t *testing.T) {
	a := newAPI(t)
	old := a.accept("1001", "m-old", "application/json", []byte("{}"), "crm")
	var ev admin.EventView
	a.json("GET", "/api/events/"+old, http.StatusOK, &ev)
	cut := ev.ReceivedAt.Add(time.Nanosecond)
	newer, err := a.st.Accept(context.Background(), store.Event{WebhookID: "1001", DedupeKey: "m-new",
		Body: []byte("{}"), ReceivedAt: cut.Add(time.Hour)}, []string{"crm"}, store.Dedupe{})
	if err != nil {
		t.Fatal(err)
	}
	var items []admin.EventSummary
	a.json("GET", "/api/events?until="+cut.Format(time.RFC3339Nano), http.StatusOK, &items)
	if len(items) != 1 || items[0].ID != old {
		t.Errorf("until: %+v, want only %s", items, old)
	}
	a.json("GET", "/api/events?since="+cut.Format(time.RFC3339Nano), http.StatusOK, &items)
	if len(items) != 1 || items[0].ID != newer.EventID {
		t.Errorf("since: %+v, want only %s", items, newer.EventID)
	}
	a.wantError("GET", "/api/events?until=yesterday", http.StatusBadRequest)
}

func TestConfigView(t *testing.T) {
	secrets := []string{"adm1n-secret", "redis-pass", "hdr-secret", "sign-secret", "agent-secret",
		"portal-secret-0123456789", "url-pass", "qkey-secret", "user-as-api-key"}
	cfg := &config.Config{
		File:  "/etc/relay.yaml",
		Admin: config.Admin{Listen: "127.0.0.1:9090", Token: secrets[0]},
		Store: config.Store{Redis: &config.RedisStore{URL: "redis://u:" + secrets[1] + "@127.0.0.1:6379/0"}},
		Destinations: []config.Destination{{
			Name: "crm", URL: "https://" + secrets[8] + ":" + secrets[6] + "@crm.example/hook?key=" + secrets[7],
			Headers: map[string]string{"X-Api-Key": secrets[2]}, SigningSecret: secrets[3],
		}},
		Agents:  []config.Agent{{Name: "office", Token: secrets[4]}},
		Portals: []config.Portal{{Name: "acme", Token: secrets[5], Destinations: []string{"crm"}}},
	}
	last := admin.NewReloadResult(time.Now(), admin.ReloadReport{}, config.Errors{{File: "/etc/relay.yaml", Line: 3, Msg: "bad"}})
	a := newAPI(t, func(o *admin.Options) {
		o.Config = func() *config.Config { return cfg }
		o.LastReload = func() *admin.ReloadResult { return last }
	})
	var v admin.ConfigView
	a.json("GET", "/api/config", http.StatusOK, &v)
	for _, s := range secrets {
		if strings.Contains(v.YAML, s) {
			t.Errorf("config view shows the secret %q:\n%s", s, v.YAML)
		}
	}
	for _, s := range []string{"name: crm", "name: acme", "X-Api-Key: '***'", "crm.example/hook", "file"} {
		if s != "file" && !strings.Contains(v.YAML, s) {
			t.Errorf("config view lacks %q:\n%s", s, v.YAML)
		}
	}
	if v.File != cfg.File || v.LastReload == nil || v.LastReload.OK ||
		!slices.Equal(v.LastReload.Problems, []string{"/etc/relay.yaml:3: bad"}) {
		t.Errorf("config view file %q, last reload %+v", v.File, v.LastReload)
	}
	if cfg.Destinations[0].Headers["X-Api-Key"] != secrets[2] || cfg.Admin.Token != secrets[0] {
		t.Error("masking changed the running config")
	}
	ok := admin.NewReloadResult(time.Now(), admin.ReloadReport{Routes: 2}, nil)
	if !ok.OK || ok.Report == nil || ok.Report.Routes != 2 {
		t.Errorf("a good reload's result = %+v", ok)
	}
	if r := admin.NewReloadResult(time.Now(), admin.ReloadReport{}, errors.New("read: gone")); r.OK || r.Error != "read: gone" {
		t.Errorf("a failed reload's result = %+v", r)
	}
}

func TestStats(t *testing.T) {
	var m *admin.Metrics
	a := newAPI(t, func(o *admin.Options) {
		m = admin.NewMetrics(admin.MetricsOptions{})
		o.Metrics = m
		o.Destinations = func() []state.Destination { return []state.Destination{{Name: "crm"}} }
	})
	a.accept("1001", "", "application/json", []byte("{}"), "crm")
	a.accept("1002", "", "application/json", []byte("{}"), "crm")
	a.kill("crm", 500, "x")
	a.accept("9999", "", "application/json", []byte("{}"))
	m.Ingest("accepted", time.Millisecond)
	m.Ingest("accepted", time.Millisecond)
	m.Ingest("parked", time.Millisecond)
	m.Delivery("crm", "dead", time.Millisecond)
	var st admin.Stats
	a.json("GET", "/api/stats", http.StatusOK, &st)
	if st.Ingest["accepted"] != 2 || st.Ingest["parked"] != 1 || st.Deliveries["dead"] != 1 || st.Deliveries["success"] != 0 ||
		st.Queued != 1 || st.Dead != 1 || st.Parked == nil || *st.Parked != 1 {
		t.Errorf("stats = %+v", st)
	}
}

// sse opens GET /api/tail as token and returns a function reading the
// next data message (or "dropped"). It returns once the stream is open,
// so an item published after it is seen.
func sse(t *testing.T, a *api, token string) func() (admin.TailItem, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", a.srv.URL+"/api/tail", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /api/tail: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	rd := bufio.NewReader(resp.Body)
	// The opening comment is written after the subscription.
	if line, err := rd.ReadString('\n'); err != nil || !strings.HasPrefix(line, ":") {
		t.Fatalf("stream opens with %q, %v", line, err)
	}
	return func() (admin.TailItem, string) {
		t.Helper()
		event := ""
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				return admin.TailItem{}, "closed"
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case strings.HasPrefix(line, "event: "):
				event = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				if event != "" {
					return admin.TailItem{}, event
				}
				var it admin.TailItem
				if err := json.Unmarshal([]byte(line[len("data: "):]), &it); err != nil {
					t.Fatalf("tail data %q: %v", line, err)
				}
				return it, ""
			}
		}
	}
}

func TestTail(t *testing.T) {
	tail := admin.NewTail(2)
	a := portalAPI(t, func(o *admin.Options) { o.Tail = tail })
	all := sse(t, a, testToken)
	acme := sse(t, a, acmeToken)
	if n := tail.Subscribers(); n != 2 {
		t.Fatalf("%d subscribers, want 2", n)
	}
	items := []admin.TailItem{
		{Kind: admin.TailEvent, EventID: "evt_1", Outcome: "accepted", Destinations: []string{"ledger", "crm"}},
		{Kind: admin.TailAttempt, EventID: "evt_1", Destination: "ledger", Outcome: "success", Attempt: 1, Status: 200},
		{Kind: admin.TailAttempt, EventID: "evt_1", Destination: "crm", Outcome: "retry", Attempt: 1, Status: 500},
	}
	tail.Publish(items[0])
	if it, _ := all(); it.EventID != "evt_1" || len(it.Destinations) != 2 {
		t.Errorf("admin tail item %+v", it)
	}
	if it, _ := acme(); it.EventID != "evt_1" || strings.Join(it.Destinations, ",") != "crm" {
		t.Errorf("acme tail item %+v, want only its crm destination", it)
	}
	tail.Publish(items[1])
	tail.Publish(items[2])
	if it, _ := all(); it.Destination != "ledger" {
		t.Errorf("admin tail item %+v", it)
	}
	if it, _ := all(); it.Destination != "crm" {
		t.Errorf("admin tail item %+v", it)
	}
	// acme never sees ledger's attempt: its next item is crm's.
	if it, _ := acme(); it.Destination != "crm" || it.Status != 500 {
		t.Errorf("acme tail item %+v, want crm's attempt", it)
	}

	tail.Close()
	if _, ev := all(); ev != "closed" {
		t.Errorf("after Close the stream gave %q, want it closed", ev)
	}
	a.wantError("GET", "/api/tail", http.StatusServiceUnavailable)
}

// /metrics needs no token, but it refuses a portal's: a wrong bearer token
// sent there must count as a failed authentication, or answering 200 to
// wrong tokens and 403 to a portal's would let anyone test portal tokens
// there without the throttle.
func TestMetricsIsNoTokenOracle(t *testing.T) {
	th, advance := clockedThrottle(3, 20*time.Second)
	a := portalAPI(t, func(o *admin.Options) { o.Throttle = th })
	var codes []int
	for _, tok := range []string{"", "wrong-guess-1", "wrong-guess-2", "wrong-guess-3", acmeToken} {
		code, _, _ := a.as(tok).do("GET", "/metrics")
		codes = append(codes, code)
	}
	if fmt.Sprint(codes) != "[200 401 401 401 429]" {
		t.Errorf("/metrics answers %v; want 200 without a token, 401 for wrong ones, then 429 for the portal's", codes)
	}
	if code, _, _ := a.as("").do("GET", "/metrics"); code != http.StatusOK {
		t.Errorf("/metrics without a token while the source is throttled: %d, want 200", code)
	}
	advance(20 * time.Second)
	if code, _, _ := a.as(acmeToken).do("GET", "/metrics"); code != http.StatusForbidden {
		t.Errorf("/metrics with a portal token: %d, want 403", code)
	}
	if code, _, _ := a.do("GET", "/metrics"); code != http.StatusOK {
		t.Errorf("/metrics with the admin token: %d, want 200", code)
	}
}
