package ui_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/relaytest"
	"github.com/relaygw/relay/relay"
)

const (
	adminToken = "console-admin-token"
	acmeToken  = "acme-portal-token-0123456789"
)

// receiver is a destination endpoint that answers 500 until fixed, then
// 200, and records the mids it accepted.
type receiver struct {
	*httptest.Server
	broken atomic.Bool
	mu     sync.Mutex
	got    []string
}

func newReceiver(t *testing.T, broken bool) *receiver {
	t.Helper()
	r := &receiver{}
	r.broken.Store(broken)
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if r.broken.Load() {
			http.Error(w, "receiver is down for maintenance", http.StatusInternalServerError)
			return
		}
		var v struct{ Mid string }
		_ = json.Unmarshal(body, &v)
		r.mu.Lock()
		r.got = append(r.got, v.Mid)
		r.mu.Unlock()
		fmt.Fprint(w, `{"ok":true}`)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) accepted() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

// browser starts headless Chromium with a fresh profile and returns its
// context. Without Chromium the test is skipped, or fails under CI=true.
func browser(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed (scripts/install-test-deps.sh installs it)")
		}
		t.Skip("chromium is not installed; run scripts/install-test-deps.sh")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 860),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.NoSandbox,
	}
	// Without these the browser reaches out to the network on its own,
	// which a closed network refuses, slowly.
	for _, f := range []string{"disable-quic", "disable-background-networking", "disable-component-update", "disable-sync",
		"disable-extensions", "disable-default-apps", "metrics-recording-only", "mute-audio"} {
		opts = append(opts, chromedp.Flag(f, true))
	}
	actx, cancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancel)
	bctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return bctx
}

// tab opens a new tab in the browser of ctx; it has its own
// sessionStorage, so it signs in on its own.
func tab(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	c, cancel := chromedp.NewContext(ctx)
	t.Cleanup(cancel)
	return c
}

// waitText waits until the element sel holds text.
func waitText(sel, text string) chromedp.Action[chromedp.Void] {
	js := fmt.Sprintf(`(() => { const el = document.querySelector(%q); return !!el && el.textContent.includes(%q); })()`, sel, text)
	return void(chromedp.Poll[bool](js, chromedp.WithPollingInterval(50*time.Millisecond)))
}

// leave runs act, which takes the console to another page (a new hash, a
// search, a click on a link, logging out), and waits until the page it
// left is gone from main. The address changes before the console's
// hashchange handler renders the new page, so until then the old page
// still answers: a wait for text that it shows too passes at once, and a
// node found in it vanishes under the next click or read ("No node with
// given id found"). It is for moves within the page; see load for a new
// document.
func leave(act chromedp.Action[chromedp.Void]) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		void(chromedp.Evaluate[bool](`(() => {
			const page = document.getElementById("main").firstElementChild;
			if (!page) throw new Error("main shows no page to leave");
			window.pageLeft = page;
			return true;
		})()`)),
		act,
		void(chromedp.Poll[bool](`!document.getElementById("main").contains(window.pageLeft)`,
			chromedp.WithPollingInterval(20*time.Millisecond))),
	)
}

// open navigates to url, the address open now with another hash, and
// waits until main shows that page instead of the one before.
func open(url string) chromedp.Action[chromedp.Void] { return leave(chromedp.Navigate(url)) }

// load opens url as a new document. Navigate returns on the load event,
// which can reach chromedp before it has dropped the old document's script
// context; a Poll (waitText, leave) then fails with "Cannot find context with
// specified id". load returns once a Poll that checks nothing runs.
func load(url string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(chromedp.Navigate(url), chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for {
			_, err := chromedp.Poll[bool](`true`)(ctx, t)
			if err == nil || ctx.Err() != nil {
				return err
			}
			time.Sleep(20 * time.Millisecond)
		}
	}))
}

// login signs in on the page open in ctx.
func login(token string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), token+kb.Enter),
		chromedp.WaitVisible(chromedp.ID("nav")),
	)
}

// shots saves a PNG of the page as docs/screenshots/NAME.png when
// UPDATE_SCREENSHOTS=1.
type shots struct {
	t   *testing.T
	dir string
}

func (s shots) take(name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if s.dir == "" {
			return nil
		}
		// No focus ring in the picture.
		if _, err := chromedp.Evaluate[any](`document.activeElement && document.activeElement.blur()`)(ctx, t); err != nil {
			return err
		}
		buf, err := chromedp.FullScreenshot(100)(ctx, t)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(s.dir, name+".png"), buf, 0o644)
	})
}

func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("dialog")].map(d => d.outerHTML + " open=" + d.open).join("\n") + "\n" + document.querySelector("main").outerHTML.slice(0, 600)`))
		t.Fatalf("%s: %v\npage: %s", what, err, html)
	}
}

// The console over a real relay: find a failed event by mid and read its
// attempts, fix the receiver, replay the DLQ from the console and watch
// the deliveries arrive and show in the live tail, then sign in to a
// client portal that sees only its own destination.
func TestConsoleInBrowser(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	crm := newReceiver(t, true)
	ledger := newReceiver(t, false)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "relay.yaml")
	text := `listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0, token: ` + adminToken + `}
store: {embedded: {path: ` + filepath.Join(dir, "data") + `}}
delivery: {poll_interval: 50ms}
routes:
  - webhook_id: "1001"
    to: [acme-crm, globex-ledger]
  - webhook_id: "1002"
    to: [globex-ledger]
destinations:
  - name: acme-crm
    url: "` + crm.URL + `/hook"
    headers: {X-Api-Key: crm-secret-key}
    retry: {max_attempts: 2, schedule: [20ms]}
    circuit: {disabled: true}
  - name: globex-ledger
    url: "` + ledger.URL + `/ledger"
    transform:
      body: '{call: .mid, answered: (.status == "ANSWER")}'
portals:
  - name: acme
    token: ` + acmeToken + `
    destinations: [acme-crm]
`
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	r := relaytest.Start(t, cfg, relay.Options{Version: "test"})
	ui := r.Admin + "/ui/"

	mids := []string{"call-7f3a", "call-8b21", "call-9c44"}
	for _, mid := range mids {
		post(t, r.Ingest+"/hooks/1001", `{"mid":"`+mid+`","status":"ANSWER","duration":42}`)
	}
	post(t, r.Ingest+"/hooks/1002", `{"mid":"call-globex-only","status":"NOANSWER"}`)
	post(t, r.Ingest+"/hooks/2002", `{"mid":"call-unrouted"}`)
	waitAPI(t, r.Admin, "/api/stats", func(v map[string]any) bool { return v["dead"] == float64(len(mids)) })
	// A reload with a problem, for the config page's last reload result.
	if err := os.WriteFile(cfgPath, []byte(text+"  - name: acme\n    token: short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Server.Reload(ctx); err == nil {
		t.Fatal("reload of a bad file succeeded")
	}
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}

	var sh shots
	if os.Getenv("UPDATE_SCREENSHOTS") == "1" {
		sh = shots{t: t, dir: filepath.Join("..", "..", "..", "docs", "screenshots")}
		if err := os.MkdirAll(sh.dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	b := browser(t, ctx)
	// A wrong token is refused and the form says so.
	run(t, b, "refused login",
		load(ui),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), "wrong-token"+kb.Enter),
		waitText("main .error-box", "401"),
	)
	run(t, b, "admin login", login(adminToken), waitText("#who", "admin"),
		waitText("main table", "acme-crm"), waitText("main .cards", "DLQ depth"), sh.take("overview"))

	// Find the second event by mid and open it.
	var list string
	run(t, b, "search by mid",
		open(ui+"#/events"),
		chromedp.WaitVisible(chromedp.ID("q-mid")),
		leave(chromedp.SendKeys(chromedp.ID("q-mid"), mids[1]+kb.Enter)),
		waitText("main table tbody", mids[1]),
		readText("main table tbody", &list),
	)
	for _, other := range []string{mids[0], mids[2]} {
		if strings.Contains(list, other) {
			t.Errorf("search for %s lists %s too:\n%s", mids[1], other, list)
		}
	}
	run(t, b, "events page screenshot", open(ui+"#/events"), waitText("main table tbody", "call-unrouted"), sh.take("events"))
	run(t, b, "search again", open(ui+"#/events?mid="+mids[1]), waitText("main table tbody", mids[1]))
	var attempts string
	run(t, b, "open the event",
		leave(chromedp.Click(chromedp.CSS("main table tbody a"))),
		waitText("main h1", "Event evt_"),
		waitText("main section", "acme-crm"),
		readText("main section[aria-label='Delivery to acme-crm'] table", &attempts),
		waitText("main pre.body", `"mid": "`+mids[1]+`"`), // pretty-printed
		sh.take("event"),
		// The same page on a phone.
		chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
		waitText("main h1", "Event evt_"),
		sh.take("event-phone"),
		chromedp.EmulateViewport(1280, 860),
	)
	var sent string
	run(t, b, "what the transform sends",
		chromedp.Click(chromedp.Search("//section[@aria-label='Delivery to globex-ledger']//summary")),
		readText("main section[aria-label='Delivery to globex-ledger'] details", &sent))
	if !strings.Contains(sent, `"call": "`+mids[1]+`"`) || !strings.Contains(sent, `"answered": true`) {
		t.Errorf("globex-ledger's transformed body is not shown:\n%s", sent)
	}
	if n := strings.Count(attempts, "receiver is down for maintenance"); n != 2 || !strings.Contains(attempts, "\t500\t") {
		t.Errorf("acme-crm attempts show %d answers of the receiver, want 2 with status 500:\n%s", n, attempts)
	}

	// The live tail in its own tab, then replay the DLQ from another.
	tail := tab(t, b)
	run(t, tail, "open the live tail", load(ui), login(adminToken),
		open(ui+"#/tail"), waitText("#tail-state", "connected"))
	crm.broken.Store(false)
	run(t, b, "replay the DLQ",
		open(ui+"#/dlq?destination=acme-crm"),
		waitText("main table tbody", "unsuccessful status 500"),
		sh.take("dlq"),
		chromedp.Click(chromedp.Search("//main//button[starts-with(normalize-space(.), 'Replay all')]")),
		chromedp.WaitVisible(chromedp.CSS("dialog[open]")),
		chromedp.Click(chromedp.Search("//dialog//button[normalize-space(.)='Replay']")),
		waitText("dialog [role=status]", "Done: 3 of 3 replayed"),
		sh.take("dlq-replay"),
	)
	deadline := time.Now().Add(20 * time.Second)
	for len(crm.accepted()) < len(mids) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := crm.accepted(); len(got) != len(mids) {
		t.Fatalf("the receiver accepted %v after the replay, want %v", got, mids)
	}
	var tailRows string
	run(t, tail, "the deliveries in the live tail",
		void(chromedp.Poll[bool](`[...document.querySelectorAll("#tail-table tbody tr")].filter(r => r.textContent.includes("acme-crm") && r.textContent.includes("success")).length === 3`,
			chromedp.WithPollingInterval(50*time.Millisecond))),
		readText("#tail-table tbody", &tailRows))
	if !strings.Contains(tailRows, "HTTP 200") {
		t.Errorf("tail rows lack the receiver's status:\n%s", tailRows)
	}
	run(t, b, "close the dialog", chromedp.Click(chromedp.Search("//dialog//button[normalize-space(.)='Close']")))
	// A fresh callback shows in the tail as it is accepted.
	post(t, r.Ingest+"/hooks/1001", `{"mid":"call-live-1","status":"ANSWER"}`)
	run(t, tail, "a new callback in the tail", waitText("#tail-table tbody", "call-live-1"), sh.take("tail"))

	// The replayed attempt is marked as a replay on the event page.
	run(t, b, "replay marked",
		open(ui+"#/events?mid="+mids[1]), waitText("main table tbody", mids[1]),
		leave(chromedp.Click(chromedp.CSS("main table tbody a"))),
		waitText("main section[aria-label='Delivery to acme-crm']", "replay 1"),
		waitText("main section[aria-label='Delivery to acme-crm']", "delivered"))
	// An event page still loading when the user moves on does not cover
	// the page they moved to: its answer is held until then.
	var h1 string
	run(t, b, "a slow event page stays behind",
		void(chromedp.Evaluate[bool](holdEventJS)),
		open(ui+"#/events?mid="+mids[0]), waitText("main table tbody", mids[0]),
		leave(chromedp.Click(chromedp.CSS("main table tbody a"))), waitText("main", "Loading"),
		open(ui+"#/dlq"), waitText("main h1", "Dead letters"),
		void(chromedp.Evaluate[bool](`window.releaseEvent(), true`)),
		void(chromedp.Poll[bool](`window.eventSettled === true`, chromedp.WithPollingInterval(20*time.Millisecond))),
		readText("main h1", &h1))
	if h1 != "Dead letters" {
		t.Errorf("the event page that loaded late replaced the DLQ page: main shows %q", h1)
	}
	run(t, b, "parked and config",
		open(ui+"#/parked"), waitText("main table tbody", "call-unrouted"), sh.take("parked"),
		open(ui+"#/config"), waitText("main pre.body", "acme-crm"), waitText("main", "token must be at least 16 bytes"),
		sh.take("config"))
	var cfgText string
	run(t, b, "config text", readText("main pre.body", &cfgText))
	for _, secret := range []string{adminToken, acmeToken, "crm-secret-key"} {
		if strings.Contains(cfgText, secret) {
			t.Errorf("the config page shows the secret %q", secret)
		}
	}
	run(t, b, "log out", leave(chromedp.Click(chromedp.ID("logout"))), chromedp.WaitVisible(chromedp.ID("token")))

	// The acme portal: its link opens its login form; it sees acme-crm only.
	portal := tab(t, b)
	run(t, portal, "portal login",
		load(ui+"?portal=acme"),
		waitText("main h1", "Sign in to the acme portal"),
		sh.take("portal-login"),
		login(acmeToken),
		waitText("#who", "portal acme"),
		waitText("main table tbody", "acme-crm"),
		sh.take("portal-overview"),
	)
	var overview, nav string
	run(t, portal, "portal overview", readText("main", &overview), readText("#nav", &nav))
	if strings.Contains(overview, "globex") || strings.Contains(overview, "Ingest rate") || strings.Contains(overview, "Parked") {
		t.Errorf("the portal overview shows more than acme's destination:\n%s", overview)
	}
	if strings.Contains(nav, "Config") || strings.Contains(nav, "Parked") {
		t.Errorf("the portal's navigation offers %q", nav)
	}
	// Without ?portal= this address is a new document: the tab keeps the token.
	var events string
	run(t, portal, "portal events",
		load(ui+"#/events"), waitText("main table tbody", mids[0]),
		readText("main table tbody", &events), sh.take("portal-events"))
	if strings.Contains(events, "globex") || strings.Contains(events, "call-globex-only") || strings.Contains(events, "call-unrouted") {
		t.Errorf("the portal lists other clients' events or deliveries:\n%s", events)
	}
	// Typed into the address bar, the config route falls back to the
	// overview; the API refuses it anyway (tested in relay/admin).
	run(t, portal, "portal cannot open config",
		open(ui+"#/config"), waitText("main h1", "Overview"))
}

// holdEventJS makes the page's next fetch of one event wait until
// window.releaseEvent() is called, and sets window.eventSettled once the
// page has read the answer and run what follows it (a task queued after
// the body is read runs after those microtasks).
const holdEventJS = `(() => {
	const real = window.fetch;
	window.fetch = (url, opts) => {
		if (!String(url).startsWith("/api/events/")) return real(url, opts);
		window.fetch = real;
		return new Promise((resolve) => {
			window.releaseEvent = () => resolve(real(url, opts).then((resp) => {
				const text = resp.text.bind(resp);
				resp.text = () => text().then((v) => { setTimeout(() => { window.eventSettled = true; }); return v; });
				return resp;
			}));
		});
	};
	return true;
})()`

// void drops an action's value, so it fits in a list of steps.
func void[T any](a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := a(ctx, t)
		return chromedp.Void{}, err
	}
}

// readText reads the text of the first element sel matches into dst.
func readText(sel string, dst *string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		v, err := chromedp.Text(chromedp.CSS(sel))(ctx, t)
		*dst = v
		return err
	})
}

func post(t *testing.T, url, body string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST %s: %d", url, resp.StatusCode)
	}
}

// waitAPI polls an admin route until ok accepts its answer.
func waitAPI(t *testing.T, base, path string, ok func(map[string]any) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		if ok(v) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: still %v", path, v)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
