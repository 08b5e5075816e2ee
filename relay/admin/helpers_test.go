package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaygw/relay/internal/authguard"
	"github.com/relaygw/relay/relay/admin"
	"github.com/relaygw/relay/relay/store"
	"github.com/relaygw/relay/relay/store/bolt"
)

// clockedThrottle returns a throttle that refuses a source after burst
// failures and forgives one every every, on a clock that only advance moves.
func clockedThrottle(burst int, every time.Duration) (th *authguard.Throttle, advance func(time.Duration)) {
	var now atomic.Pointer[time.Time]
	start := time.Unix(1_800_000_000, 0)
	now.Store(&start)
	th = authguard.NewThrottle(authguard.Options{Burst: burst, Every: every, MaxSources: 10,
		Now: func() time.Time { return *now.Load() }})
	return th, func(d time.Duration) {
		next := now.Load().Add(d)
		now.Store(&next)
	}
}

const testToken = "s3cret-token"

// api is an admin handler over a real embedded store, served by httptest.
type api struct {
	t     testing.TB
	st    store.Store
	h     *admin.Handler
	srv   *httptest.Server
	token string
	woken atomic.Int64 // Wake calls
}

// newAPI opens a bolt store in a temp dir and serves an admin handler on
// it; mod may set hooks on the options.
func newAPI(t testing.TB, mod ...func(*admin.Options)) *api {
	t.Helper()
	st, err := bolt.Open(t.TempDir(), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a := &api{t: t, st: st, token: testToken}
	o := admin.Options{Store: st, Token: testToken, Wake: func(...string) { a.woken.Add(1) }}
	for _, m := range mod {
		m(&o)
	}
	a.h = admin.NewHandler(o)
	a.srv = httptest.NewServer(a.h)
	t.Cleanup(a.srv.Close)
	return a
}

// do sends a request with the api's token and returns the status, headers
// and body.
func (a *api) do(method, path string) (int, http.Header, []byte) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.srv.URL+path, nil)
	if err != nil {
		a.t.Fatal(err)
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body
}

// json sends a request, checks the status and decodes the answer into v.
func (a *api) json(method, path string, want int, v any) http.Header {
	a.t.Helper()
	code, h, body := a.do(method, path)
	if code != want {
		a.t.Fatalf("%s %s: status %d (%s), want %d", method, path, code, body, want)
	}
	if ct := h.Get("Content-Type"); ct != "application/json" {
		a.t.Fatalf("%s %s: Content-Type %q", method, path, ct)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			a.t.Fatalf("%s %s: answer %s: %v", method, path, body, err)
		}
	}
	return h
}

// wantError checks an error answer: the status and a JSON message.
func (a *api) wantError(method, path string, want int) string {
	a.t.Helper()
	var e struct{ Error string }
	a.json(method, path, want, &e)
	if e.Error == "" {
		a.t.Fatalf("%s %s: %d answer without a message", method, path, want)
	}
	return e.Error
}

func (a *api) accept(webhook, mid, contentType string, body []byte, dests ...string) string {
	a.t.Helper()
	res, err := a.st.Accept(context.Background(), store.Event{
		WebhookID: webhook, DedupeKey: mid, ContentType: contentType, Body: body,
	}, dests, store.Dedupe{})
	if err != nil {
		a.t.Fatal(err)
	}
	return res.EventID
}

// kill dead-letters the next due delivery of dest after one failed
// attempt and returns it.
func (a *api) kill(dest string, status int, msg string) store.Delivery {
	a.t.Helper()
	ctx := context.Background()
	ds, err := a.st.Lease(ctx, dest, 1, time.Hour)
	if err != nil || len(ds) != 1 {
		a.t.Fatalf("Lease(%s): %d, %v", dest, len(ds), err)
	}
	at := store.Attempt{N: 1, At: time.Now(), Duration: 1500 * time.Microsecond, Status: status, Error: msg}
	if err := store.SettleWait(ctx, a.st, ds[0], store.Settlement{State: store.StateDead, Attempt: at}); err != nil {
		a.t.Fatal(err)
	}
	return ds[0]
}

func (a *api) complete(dest string) store.Delivery {
	a.t.Helper()
	ctx := context.Background()
	ds, err := a.st.Lease(ctx, dest, 1, time.Hour)
	if err != nil || len(ds) != 1 {
		a.t.Fatalf("Lease(%s): %d, %v", dest, len(ds), err)
	}
	ok := store.Attempt{N: 1, At: time.Now(), Status: 200, Response: "ok"}
	if err := store.SettleWait(ctx, a.st, ds[0], store.Settlement{State: store.StateDelivered, Attempt: ok}); err != nil {
		a.t.Fatal(err)
	}
	return ds[0]
}

func (a *api) depths() store.Depths {
	a.t.Helper()
	d, err := a.st.Depths(context.Background())
	if err != nil {
		a.t.Fatal(err)
	}
	return d
}

// pages follows X-Next-Cursor from path until the last page and returns
// every item and the number of pages.
func pages[T any](a *api, path string) ([]T, int) {
	a.t.Helper()
	var all []T
	next := path
	for n := 1; ; n++ {
		var items []T
		h := a.json(http.MethodGet, next, http.StatusOK, &items)
		all = append(all, items...)
		cur := h.Get("X-Next-Cursor")
		if cur == "" {
			if h.Get("Link") != "" {
				a.t.Fatalf("last page of %s has a Link header", path)
			}
			return all, n
		}
		if n > 100 {
			a.t.Fatalf("%s: more than 100 pages", path)
		}
		link := h.Get("Link")
		if !bytes.Contains([]byte(link), []byte(`rel="next"`)) {
			a.t.Fatalf("page with a cursor has Link %q", link)
		}
		// The Link target is the same query with the cursor set.
		next = link[1:bytes.IndexByte([]byte(link), '>')]
	}
}
