package deliver

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/relay/store"
)

func TestPublicAddr(t *testing.T) {
	tests := []struct {
		ip     string
		public bool
	}{
		{"93.184.216.34", true},
		{"2606:2800:220:1:248:1893:25c8:1946", true},
		{"127.0.0.1", false},
		{"127.8.9.10", false},
		{"::1", false},
		{"10.1.2.3", false},
		{"172.16.0.1", false},
		{"192.168.1.1", false},
		{"fc00::1", false},
		{"fd12:3456::1", false},
		{"169.254.169.254", false}, // cloud metadata
		{"fe80::1", false},
		{"0.0.0.0", false},
		{"0.1.2.3", false},
		{"::", false},
		{"100.64.0.1", false},
		{"100.127.255.254", false},
		{"100.128.0.1", true},
		{"224.0.0.1", false},
		{"ff02::1", false},
		{"255.255.255.255", false},
		{"::ffff:127.0.0.1", false},
		{"::ffff:10.0.0.1", false},
		{"::ffff:93.184.216.34", true},
	}
	for _, tt := range tests {
		if got := publicAddr(netip.MustParseAddr(tt.ip)); got != tt.public {
			t.Errorf("publicAddr(%s) = %v, want %v", tt.ip, got, tt.public)
		}
	}
}

// tcpAddr returns the listener address of srv.
func tcpAddr(tb testing.TB, raw string) net.Addr {
	tb.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		tb.Fatal(err)
	}
	a, err := net.ResolveTCPAddr("tcp", u.Host)
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// TestRedirectGuard follows a receiver's 307 through post, the code both a
// worker and an agent attempt with, and checks which hops are refused. The
// first hop of a destination "on the internet" (public.example, which the
// test's resolver says is 203.0.113.7) is dialled to a loopback receiver,
// the way the internet would carry it there; the hops go through the real
// guarded dialer.
func TestRedirectGuard(t *testing.T) {
	target := newSink(t, status(200)) // where the redirects lead
	targetPort := tcpAddr(t, target.URL).(*net.TCPAddr).Port
	tests := []struct {
		name    string
		dest    string     // the destination's configured URL
		own     []net.Addr // the relay's listeners
		to      string     // the redirect's Location
		refused string     // in the error; "" for followed
	}{
		{"public destination to loopback", "http://public.example/hook", nil, target.URL + "/x",
			"is not a public address"},
		{"public destination to localhost, refused on the dialled address", "http://public.example/hook", nil,
			strings.Replace(target.URL, "127.0.0.1", "localhost", 1) + "/x", "is not a public address"},
		{"loopback destination to loopback: its operator's network", "", nil, target.URL + "/x", ""},
		{"loopback destination to the relay's own listener", "", []net.Addr{tcpAddr(t, target.URL)}, target.URL + "/api/dlq/replay",
			"is one of the relay's own listeners"},
		{"own listener on every interface", "", []net.Addr{&net.TCPAddr{IP: net.IPv4zero, Port: targetPort}},
			target.URL + "/hooks/1", "is one of the relay's own listeners"},
		{"public destination to the relay's own listener", "http://public.example/hook", []net.Addr{tcpAddr(t, target.URL)},
			target.URL + "/hooks/1", "is one of the relay's own listeners"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(target.requests())
			first := newSink(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Location", tt.to)
				w.WriteHeader(http.StatusTemporaryRedirect)
			})
			dest := tt.dest
			if dest == "" {
				dest = first.URL + "/hook"
			}
			u, _ := url.Parse(dest)
			client := newClient(5*time.Second, 1, nil)
			if u.Hostname() == "public.example" {
				firstAddr := tcpAddr(t, first.URL).String()
				var d net.Dialer
				client.HTTPClient.Transport.(*http.Transport).DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
					return d.DialContext(ctx, network, firstAddr)
				}
			}
			hops := newRedirector(5*time.Second, 1, nil, newDialGuard(tt.own))
			hops.lookup = func(_ context.Context, host string) ([]netip.Addr, error) {
				if host == "public.example" {
					return []netip.Addr{netip.MustParseAddr("203.0.113.7")}, nil
				}
				return nil, errors.New("no such host")
			}
			t.Cleanup(func() { client.HTTPClient.CloseIdleConnections(); hops.closeIdle() })

			res := post(context.Background(), client, hops, 5*time.Second, u, "", http.Header{}, []byte(`{}`), true)
			got := len(target.requests()) - before
			if tt.refused == "" {
				if res.err != nil || res.status != http.StatusOK || got != 1 {
					t.Fatalf("result %+v, target got %d requests; want the redirect followed", res, got)
				}
				return
			}
			if !errors.Is(res.err, ErrRedirectRefused) || !strings.Contains(res.err.Error(), tt.refused) {
				t.Fatalf("error %v; want a refused redirect (%s)", res.err, tt.refused)
			}
			if want := "status 307 to " + redactURL(mustParse(t, tt.to)); !strings.Contains(res.err.Error(), want) {
				t.Errorf("error %q does not say %q", res.err, want)
			}
			if retries(0, res.err) {
				t.Error("a refused redirect is retried; want a final failure")
			}
			if got != 0 {
				t.Errorf("the redirect's target got %d requests, want none", got)
			}
		})
	}
}

func mustParse(tb testing.TB, raw string) *url.URL {
	tb.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

// TestRedirectDropsConfiguredHeaders: localhost and 127.0.0.1 are two hosts
// of one receiver. A redirect from one to the other keeps what Relay builds
// (identity and signature) and drops every header the destination's config
// sets, Authorization and Cookie with them; one on the same host keeps all.
func TestRedirectDropsConfiguredHeaders(t *testing.T) {
	tests := []struct {
		name     string
		to       func(base string) string
		wantKept bool // the configured headers reach the second request
	}{
		{"another host", func(base string) string { return base + "/there" }, false},
		{"same host", func(string) string { return "/there" }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHops(t, func(base string) map[string]hop {
				return map[string]hop{"/hook": {http.StatusTemporaryRedirect, tt.to(base)}}
			})
			d := dest("crm", strings.Replace(h.URL, "127.0.0.1", "localhost", 1)+"/hook")
			d.FollowRedirects = true
			d.SigningSecret = vectorSecret
			d.Headers = map[string]string{"Authorization": "Bearer s3cret", "Cookie": "sid=1", "X-Api-Key": "k"}
			st := newTestStore(t)
			evID := accept(t, st, store.Event{Body: []byte(`{"mid":"1"}`), ContentType: "application/json", DedupeKey: "m-1"}, "crm")
			startManager(t, st, []config.Destination{d}, testOptions())
			got := waitState(t, st, evID, "crm", store.StateDelivered)

			reqs := h.requests()
			if len(reqs) != 2 {
				t.Fatalf("receiver got %d requests, want 2", len(reqs))
			}
			second := reqs[1].header
			for _, k := range []string{"Authorization", "Cookie", "X-Api-Key"} {
				if kept := second.Get(k) != ""; kept != tt.wantKept {
					t.Errorf("%s %q after the redirect; want kept=%v", k, second.Get(k), tt.wantKept)
				}
			}
			for _, k := range []string{"Content-Type", HeaderIdempotencyKey, HeaderEventID, HeaderAttempt, HeaderWebhookIDRelay} {
				if second.Get(k) != reqs[0].header.Get(k) {
					t.Errorf("%s %q after the redirect, want %q", k, second.Get(k), reqs[0].header.Get(k))
				}
			}
			checkSignature(t, reqs[1], vectorSecret, got.ID)
		})
	}
}

// TestSenderRefusesRedirect: an agent's Sender has the guard too, with no
// listeners of its own: from a destination on a public address a redirect
// to loopback is refused, as a final error the agent reports as such.
func TestSenderRefusesRedirect(t *testing.T) {
	target := newSink(t, status(200))
	first := newSink(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Location", target.URL+"/internal")
		w.WriteHeader(http.StatusPermanentRedirect)
	})
	s := NewSender(5*time.Second, 1, nil)
	t.Cleanup(s.Close)
	firstAddr := tcpAddr(t, first.URL).String()
	var d net.Dialer
	s.client.HTTPClient.Transport.(*http.Transport).DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, firstAddr)
	}
	s.hops.lookup = func(context.Context, string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("203.0.113.7")}, nil
	}
	res := s.Send(context.Background(), "http://public.example/hook", "", http.Header{}, []byte(`{}`), true)
	if !errors.Is(res.Err, ErrRedirectRefused) || res.Status != 0 || retries(0, res.Err) {
		t.Fatalf("result %+v; want a final refused redirect without a status", res)
	}
	if n := len(target.requests()); n != 0 {
		t.Errorf("the redirect's target got %d requests, want none", n)
	}
}
