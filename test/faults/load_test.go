package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// seedBody is relay/testdata/seed.json: the provider's callback as it
// really arrives (a trailing comma, numbers too long for float64).
var seedBody = func() []byte {
	b, err := os.ReadFile("../../relay/testdata/seed.json")
	if err != nil {
		panic(err)
	}
	return b
}()

const seedMid = `"1234-1333-XXXXX"`

// bodyFor is the seed callback with its mid replaced: the bytes the load
// generator posts for mid, and the bytes every destination must receive.
func bodyFor(mid string) []byte {
	return bytes.Replace(seedBody, []byte(seedMid), []byte(`"`+mid+`"`), 1)
}

// answer is one ingest response as the provider saw it.
type answer struct {
	at      time.Time
	took    time.Duration // from the request's start to the answer (or the error)
	code    int           // 0: no answer (connection refused, reset, timed out)
	status  string        // "accepted", "duplicate", or "" for anything else
	eventID string
	err     string
}

func (a answer) ok() bool { return a.code == http.StatusAccepted || a.code == http.StatusOK }

// loadGen is the providers' side of the ledger: it posts callbacks with
// unique mids at a bounded rate, repeats some of them as providers do,
// retries every one that was not answered 2xx (a provider retries
// anything else), and records every answer.
type loadGen struct {
	prefix string
	// targets returns the ingest base URLs to spread posts over; it is
	// called for every post, so a scenario can drop a killed relay.
	targets func() []string
	client  *http.Client

	next atomic.Int64
	rr   atomic.Int64

	mu      sync.Mutex
	answers map[string][]answer
	order   []string // mids in the order first posted
	retry   []string // mids waiting for a provider retry
}

// answerTimeout is how long the provider waits for an answer; longer, and
// it counts as no answer and is retried.
const answerTimeout = 5 * time.Second

func newLoadGen(prefix string, targets ...string) *loadGen {
	g := &loadGen{prefix: prefix, answers: map[string][]answer{},
		client: &http.Client{Timeout: answerTimeout, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	g.targets = func() []string { return targets }
	return g
}

// post sends mid's callback to target and records the answer.
//
// The request does not take the generator's context: a post cut short by
// the generator stopping could still have been accepted, and every post
// must be in the ledger. The client's timeout bounds it.
func (g *loadGen) post(target, mid string) answer {
	a := answer{}
	req, err := http.NewRequest(http.MethodPost, target+"/hooks/"+webhookID, bytes.NewReader(bodyFor(mid)))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Content-Type", "application/json")
	sent := time.Now()
	resp, err := g.client.Do(req)
	a.at = time.Now()
	a.took = a.at.Sub(sent)
	if err != nil {
		a.err = err.Error()
	} else {
		raw, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		a.code = resp.StatusCode
		var body struct {
			Status  string `json:"status"`
			EventID string `json:"event_id"`
		}
		if rerr != nil {
			a.err = rerr.Error()
			a.code = 0
		} else if a.ok() && json.Unmarshal(raw, &body) != nil {
			a.err = fmt.Sprintf("unreadable 2xx answer %q", raw)
		}
		a.status, a.eventID = body.Status, body.EventID
	}
	g.mu.Lock()
	if _, seen := g.answers[mid]; !seen {
		g.order = append(g.order, mid)
	}
	g.answers[mid] = append(g.answers[mid], a)
	if !a.ok() {
		g.retry = append(g.retry, mid)
	}
	g.mu.Unlock()
	return a
}

// target picks the next ingest URL, round robin.
func (g *loadGen) target() string {
	ts := g.targets()
	return ts[int(g.rr.Add(1))%len(ts)]
}

// newMid returns a mid never posted before.
func (g *loadGen) newMid() string {
	return fmt.Sprintf("%s-%07d", g.prefix, g.next.Add(1))
}

// pick chooses what to post next: a mid waiting for its retry, else (one
// time in ten) a repeat of a mid already answered, else a new one.
func (g *loadGen) pick(rnd *rand.Rand) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if n := len(g.retry); n > 0 {
		mid := g.retry[0]
		g.retry = g.retry[1:]
		return mid
	}
	if n := len(g.order); n > 0 && rnd.IntN(10) == 0 {
		return g.order[rnd.IntN(n)]
	}
	return ""
}

// run posts at perSecond for d (or until ctx ends) from a few workers.
func (g *loadGen) run(ctx context.Context, perSecond float64, d time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	lim := rate.NewLimiter(rate.Limit(perSecond), 1)
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for lim.Wait(ctx) == nil {
				mid := g.pick(rnd)
				if mid == "" {
					mid = g.newMid()
				}
				g.post(g.target(), mid)
			}
		})
	}
	wg.Wait()
}

// backlog posts n new mids as fast as 16 workers can (bounded by
// perSecond), retrying those not answered 2xx, and returns when all n are
// answered 2xx or ctx ends.
func (g *loadGen) backlog(ctx context.Context, n int, perSecond float64) {
	lim := rate.NewLimiter(rate.Limit(perSecond), 1)
	var wg sync.WaitGroup
	var left atomic.Int64
	left.Store(int64(n))
	for range 16 {
		wg.Go(func() {
			for left.Add(-1) >= 0 && lim.Wait(ctx) == nil {
				g.post(g.target(), g.newMid())
			}
		})
	}
	wg.Wait()
	g.settle(ctx, time.Minute)
}

// settle retries, as a provider would, every mid not yet answered 2xx
// until each is, or until within has passed. It returns how many are
// still not answered 2xx.
func (g *loadGen) settle(ctx context.Context, within time.Duration) int {
	deadline := time.Now().Add(within)
	for {
		g.mu.Lock()
		var todo []string
		for _, mid := range g.order {
			if !anyOK(g.answers[mid]) {
				todo = append(todo, mid)
			}
		}
		g.retry = nil
		g.mu.Unlock()
		if len(todo) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return len(todo)
		}
		parallel(ctx, 16, todo, func(mid string) { g.post(g.target(), mid) })
		time.Sleep(100 * time.Millisecond)
	}
}

// parallel runs f on every item from n workers.
func parallel(ctx context.Context, n int, items []string, f func(string)) {
	ch := make(chan string)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for it := range ch {
				f(it)
			}
		})
	}
	for _, it := range items {
		if ctx.Err() != nil {
			break
		}
		ch <- it
	}
	close(ch)
	wg.Wait()
}

func anyOK(as []answer) bool {
	for _, a := range as {
		if a.ok() {
			return true
		}
	}
	return false
}

// snapshot copies the answers recorded so far.
func (g *loadGen) snapshot() map[string][]answer {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string][]answer, len(g.answers))
	for k, v := range g.answers {
		out[k] = append([]answer(nil), v...)
	}
	return out
}

// loadFor runs g in the background for d; the returned wait blocks until
// it is done. The test's end stops it.
func loadFor(t testing.TB, g *loadGen, perSecond float64, d time.Duration) (wait func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.run(ctx, perSecond, d)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return func() { <-done }
}
