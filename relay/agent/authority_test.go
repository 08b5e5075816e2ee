package agent

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/authguard"
	"github.com/relaygw/relay/relay/deliver"
	"github.com/relaygw/relay/relay/store"
)

// forge returns raw with its fields changed by edit, encoded as the relay
// encodes tickets: what an agent can do to any ticket it holds.
func forge(t *testing.T, raw string, edit func(*ticket)) string {
	t.Helper()
	tk, err := decodeTicket(raw)
	if err != nil {
		t.Fatal(err)
	}
	edit(&tk)
	return tk.encode()
}

// secondProcess is another relay process on the same store, which handed
// out none of the leases: it answers reports from the store's records.
func secondProcess(t *testing.T, ts *testServer) *testServer {
	t.Helper()
	cfg, err := config.Load([]byte(serverConfig), "agents.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := deliver.NewManager(ts.st, cfg.Destinations, deliver.Options{Logger: ts.opts.Logger})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(ts.st, m, cfg, ServerOptions{Logger: ts.opts.Logger})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	t.Cleanup(srv.Close)
	return &testServer{Server: srv, m: m, st: ts.st, url: hs.URL, logs: ts.logs}
}

// TestForeignTicketRefused: office-2 holds a ticket of office-1's delivery
// (it leaked, or was guessed) and reports it delivered, as it is and with
// the destination changed to one of its own. Both are refused invalid,
// whichever relay process answers, and office-1's delivery is untouched:
// office-1 then records its own outcome.
func TestForeignTicketRefused(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*ticket)
		other bool // reported to a second relay process
	}{
		{"as handed out", func(*ticket) {}, false},
		{"destination changed", func(tk *ticket) { tk.Destination = "other" }, false},
		{"destination changed, second process", func(tk *ticket) { tk.Destination = "other" }, true},
		{"event and destination changed", func(tk *ticket) { tk.Destination = "other"; tk.EventID = "evt_nope" }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, ServerOptions{})
			id := ts.queue(t, "office")
			j := ts.leaseOne(t, "office-1", "office")
			forged := forge(t, j.Ticket, tt.edit)
			to := ts
			if tt.other {
				to = secondProcess(t, ts)
			}
			resp := to.report(t, "office-2", reportRequest{Reports: []report{{Ticket: forged, Status: 200}}, Held: []string{forged}})
			if resp.Acks[0] != ackInvalid || len(resp.Lost) != 1 {
				t.Errorf("acks %q, lost %v; want invalid and the held ticket not extended", resp.Acks, resp.Lost)
			}
			if d := ts.delivery(t, id); d.State != store.StatePending || d.Attempts != 0 {
				t.Fatalf("delivery %s with %d attempts after the forged report; want pending, untouched", d.State, d.Attempts)
			}
			if ack := to.report(t, "office-1", reportRequest{Reports: []report{{Ticket: j.Ticket, Status: 200}}}).Acks[0]; ack != "success" {
				t.Errorf("the holder's own report acked %q, want success", ack)
			}
		})
	}
}

// TestForgedAttemptCount: the attempt number comes from the relay's record
// of the lease, not the ticket. A ticket claiming attempt 11 (past
// max_attempts 5) or -5 records attempt 1, retried, on either process.
func TestForgedAttemptCount(t *testing.T) {
	for _, n := range []int{11, -5} {
		for _, other := range []bool{false, true} {
			ts := newTestServer(t, ServerOptions{})
			id := ts.queue(t, "office")
			j := ts.leaseOne(t, "office-1", "office")
			forged := forge(t, j.Ticket, func(tk *ticket) { tk.Attempts = n; tk.CreatedAt = 1 })
			to := ts
			if other {
				to = secondProcess(t, ts)
			}
			ack := to.report(t, "office-1", reportRequest{Reports: []report{{Ticket: forged, Status: 500}}}).Acks[0]
			d := ts.delivery(t, id)
			if ack != "retry" || d.State != store.StatePending || d.Attempts != 1 || len(d.AttemptLog) != 1 || d.AttemptLog[0].N != 1 {
				t.Errorf("attempts=%d (second process %v): ack %q, %s with %d attempts, log %+v; want retry with attempt 1",
					n, other, ack, d.State, d.Attempts, d.AttemptLog)
			}
		}
	}
}

// TestOversizedReportTruncated: a 7 MiB response and a 2 MB error are
// stored and logged cut to the caps of direct delivery.
func TestOversizedReportTruncated(t *testing.T) {
	tests := []struct {
		name string
		out  report
	}{
		{"response", report{Status: 500, Response: strings.Repeat("r", 7<<20)}},
		{"error", report{Error: strings.Repeat("e", 2_000_000)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, ServerOptions{})
			id := ts.queue(t, "office")
			j := ts.leaseOne(t, "office-1", "office")
			tt.out.Ticket = j.Ticket
			if ack := ts.report(t, "office-1", reportRequest{Reports: []report{tt.out}}).Acks[0]; ack != "retry" {
				t.Fatalf("ack %q, want retry", ack)
			}
			a := ts.delivery(t, id).AttemptLog[0]
			if len(a.Response) > 1<<10 || len(a.Error) > 2<<10 {
				t.Errorf("stored response of %d bytes and error of %d; want at most 1 KiB each (and the reason)", len(a.Response), len(a.Error))
			}
			if a.Response == "" && tt.name == "response" || a.Error == "" {
				t.Errorf("stored response %q, error %q: want their beginnings kept", a.Response, a.Error)
			}
			sc := bufio.NewScanner(strings.NewReader(ts.log()))
			sc.Buffer(nil, 16<<20)
			for sc.Scan() {
				if len(sc.Text()) > 4<<10 {
					t.Errorf("a log line of %d bytes: %.200s...", len(sc.Text()), sc.Text())
				}
			}
		})
	}
}

// TestAuthThrottle: after burst failed authentications from one address
// the relay answers 429 with Retry-After, even for the right name and
// token, which it does not look at, until the clock forgives a failure.
// Bearer is matched in any case.
func TestAuthThrottle(t *testing.T) {
	var now atomic.Pointer[time.Time]
	start := time.Unix(1_800_000_000, 0)
	now.Store(&start)
	th := authguard.NewThrottle(authguard.Options{Burst: 3, Every: 30 * time.Second, MaxSources: 10,
		Now: func() time.Time { return *now.Load() }})
	ts := newTestServer(t, ServerOptions{Throttle: th})
	send := func(name, auth string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, ts.url+PathReport, strings.NewReader(`{"outcomes":[],"held":[]}`))
		req.Header.Set(HeaderAgent, name)
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	const good = "tok-1-0123456789abcdef"
	for _, auth := range []string{"bearer " + good, "BEARER " + good} {
		if code, _ := send("office-1", auth); code != http.StatusOK {
			t.Errorf("%q: %d, want 200", auth, code)
		}
	}
	var codes []int
	for _, c := range []struct{ name, auth string }{
		{"office-1", "Bearer wrong"}, {"office-9", "Bearer " + good}, {"office-1", "Basic " + good},
		{"office-1", "Bearer " + good},
	} {
		code, _ := send(c.name, c.auth)
		codes = append(codes, code)
	}
	_, retry := send("office-1", "Bearer "+good)
	if fmt.Sprint(codes) != "[401 401 401 429]" || retry != "30" {
		t.Fatalf("answers %v, Retry-After %q; want three 401s, then 429 with Retry-After 30 for the right token", codes, retry)
	}
	later := start.Add(30 * time.Second)
	now.Store(&later)
	if code, _ := send("office-1", "Bearer "+good); code != http.StatusOK {
		t.Errorf("after Retry-After: %d, want 200", code)
	}
}
