package faults

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// window is a span of time in which a fault may cause a duplicate delivery:
// from the moment a process died (or Redis stopped answering) to the moment
// the service was back.
type window struct {
	what       string
	start, end time.Time
}

// faults records the windows of one scenario.
type faults struct {
	mu sync.Mutex
	ws []window
	// measure, when set, adds a scenario's own numbers to its ledger
	// once the queue has drained.
	measure func(*ledger)
}

// begin marks the start of a fault; the returned func marks its end.
func (f *faults) begin(what string) (end func()) {
	w := window{what: what, start: time.Now()}
	return func() {
		w.end = time.Now()
		f.mu.Lock()
		f.ws = append(f.ws, w)
		f.mu.Unlock()
	}
}

func (f *faults) windows() []window {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]window(nil), f.ws...)
}

// ledger is the balance of one scenario.
type ledger struct {
	Scenario   string `json:"scenario"`
	Size       string `json:"size"`
	Mids       int    `json:"mids"`         // distinct mids posted
	Posts      int    `json:"posts"`        // requests, repeats and retries included
	Answered   int    `json:"answered_2xx"` // mids answered 2xx at least once
	Accepted   int    `json:"accepted"`     // "accepted" answers
	DupAnswers int    `json:"duplicate_answers"`
	Refused    int    `json:"refused"`    // non-2xx answers and no answers
	Delivered  int    `json:"delivered"`  // (mid, destination) pairs delivered
	Deliveries int    `json:"deliveries"` // 200-answered requests at the sinks
	Duplicates int    `json:"duplicates"` // deliveries beyond the first per pair
	Lost       int    `json:"lost"`       // (mid, destination) pairs answered 2xx, never delivered
	Faults     int    `json:"faults"`
	// RefusedP50MS and RefusedMaxMS: how long the refusals (and the posts
	// that got no answer) took, as the provider waited for them.
	RefusedP50MS int64 `json:"refused_p50_ms"`
	RefusedMaxMS int64 `json:"refused_max_ms"`
	// DupLeadMS is the longest a duplicate's first delivery came before
	// the start of its fault window, in milliseconds: how far back a crash
	// reaches into deliveries already made.
	DupLeadMS int64 `json:"dup_lead_ms"`
	// TakeoverMS is how long after a relay's kill the last delivery it
	// held was made by the survivor; TakenOver how many it held.
	TakeoverMS int64   `json:"takeover_ms,omitempty"`
	TakenOver  int     `json:"taken_over,omitempty"`
	Seconds    float64 `json:"seconds"`
}

// checkLedger waits (bounded) for every queue to drain, then balances the
// answers of g against the deliveries of s:
//   - every mid answered 2xx is delivered at least once to every destination;
//   - no mid gets two "accepted" answers, and every 2xx answer and every
//     delivery of a mid carry one event id;
//   - a mid delivered twice to a destination was first delivered within a
//     fault window widened by slack before (an attempt, or a lease, running
//     when the fault hit) and a second after;
//   - every mid answered 2xx is answered "duplicate" when posted again.
func checkLedger(t *testing.T, g *loadGen, s *sink, admin []string, fs *faults, slack time.Duration, started time.Time) ledger {
	t.Helper()
	// Providers retry what was not answered 2xx; once the fault is over,
	// every callback must be taken.
	if n := g.settle(t.Context(), time.Minute); n > 0 {
		t.Errorf("%d mids still not answered 2xx a minute after the load ended", n)
	}
	waitDrained(t, admin)
	answers := g.snapshot()
	got, contract := s.snapshot()
	for _, p := range contract {
		t.Errorf("contract: %s", p)
	}
	l, ok, problems := balance(answers, got, fs.windows(), slack)
	// Losses first: they are what the suite exists for.
	sort.SliceStable(problems, func(i, j int) bool {
		return strings.HasPrefix(problems[i], "LOST") && !strings.HasPrefix(problems[j], "LOST")
	})
	l.Scenario, l.Size = t.Name(), size.name
	if fs.measure != nil {
		fs.measure(&l)
	}
	for i, p := range problems {
		if i == 20 {
			t.Errorf("... %d problems in all", len(problems))
			break
		}
		t.Error(p)
	}
	repostDuplicates(t, g, ok, answers)
	l.Seconds = time.Since(started).Seconds()
	t.Logf("ledger: %+v", l)
	recordLedger(t, l)
	return l
}

// balance balances answers against deliveries (see checkLedger) and
// returns the ledger, the mids answered 2xx, and every problem found.
func balance(answers map[string][]answer, got map[dmKey][]delivery, ws []window, slack time.Duration) (l ledger, ok, problems []string) {
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	l = ledger{Mids: len(answers), Faults: len(ws)}
	var refusedTook []time.Duration
	for mid, as := range answers {
		l.Posts += len(as)
		accepted, eventIDs := 0, map[string]bool{}
		for _, a := range as {
			switch {
			case a.ok() && a.status == "accepted":
				accepted++
			case a.ok() && a.status == "duplicate":
				l.DupAnswers++
			case a.ok():
				fail("mid %s: 2xx answer with status %q", mid, a.status)
			default:
				l.Refused++
				refusedTook = append(refusedTook, a.took)
			}
			if a.ok() {
				eventIDs[a.eventID] = true
			}
		}
		l.Accepted += accepted
		if accepted > 1 {
			fail("mid %s: accepted %d times", mid, accepted)
		}
		for _, d := range destinations {
			for _, dl := range got[dmKey{d, mid}] {
				eventIDs[dl.eventID] = true
			}
		}
		if len(eventIDs) > 1 {
			fail("mid %s: answers and deliveries carry %d event ids: %v", mid, len(eventIDs), keys(eventIDs))
		}
		if anyOK(as) {
			ok = append(ok, mid)
		}
	}
	sort.Strings(ok)
	l.Answered = len(ok)
	if n := len(refusedTook); n > 0 {
		slices.Sort(refusedTook)
		l.RefusedP50MS, l.RefusedMaxMS = refusedTook[n/2].Milliseconds(), refusedTook[n-1].Milliseconds()
	}
	for k, ds := range got {
		l.Deliveries += len(ds)
		if _, posted := answers[k.mid]; !posted {
			fail("%s: delivered mid %s that was never posted", k.dest, k.mid)
		}
		if len(ds) == 0 {
			continue
		}
		l.Delivered++
		if len(ds) == 1 {
			continue
		}
		l.Duplicates += len(ds) - 1
		first := ds[0].at
		if lead, in := leadInto(first, ws, slack); in {
			l.DupLeadMS = max(l.DupLeadMS, lead.Milliseconds())
		} else {
			fail("%s: mid %s delivered %d times, first at %s, outside every fault window %s",
				k.dest, k.mid, len(ds), first.Format("15:04:05.000"), fmtWindows(ws))
		}
	}
	for _, mid := range ok {
		for _, d := range destinations {
			if len(got[dmKey{d, mid}]) == 0 {
				l.Lost++
				fail("LOST: mid %s answered 2xx, never delivered to %s; answers: %s", mid, d, fmtAnswers(answers[mid]))
			}
		}
	}
	return l, ok, problems
}

// repostDuplicates posts every mid in mids once more: each must be answered
// 2xx "duplicate" with the event id it was first answered with.
func repostDuplicates(t *testing.T, g *loadGen, mids []string, before map[string][]answer) {
	t.Helper()
	var mu sync.Mutex
	bad := 0
	parallel(t.Context(), 16, mids, func(mid string) {
		a := g.post(g.target(), mid)
		want := ""
		for _, b := range before[mid] {
			if b.ok() {
				want = b.eventID
				break
			}
		}
		if !a.ok() || a.status != "duplicate" || a.eventID != want {
			mu.Lock()
			defer mu.Unlock()
			bad++
			if bad <= 10 {
				t.Errorf("mid %s posted again: %d %q event %q (%s), want duplicate of %q", mid, a.code, a.status, a.eventID, a.err, want)
			}
		}
	})
	if bad > 10 {
		t.Errorf("%d mids in all were not answered duplicate when posted again", bad)
	}
}

// leadInto finds a window that at lies in (widened by slack before, and a
// second after for the store's clients to reconnect) and returns how long before the window's start at came
// (0 inside the window).
func leadInto(at time.Time, ws []window, slack time.Duration) (time.Duration, bool) {
	for _, w := range ws {
		if !at.Before(w.start.Add(-slack)) && !at.After(w.end.Add(time.Second)) {
			return max(0, w.start.Sub(at)), true
		}
	}
	return 0, false
}

func fmtAnswers(as []answer) string {
	var b strings.Builder
	for _, a := range as {
		fmt.Fprintf(&b, "[%s %d %s %s%s]", a.at.Format("15:04:05.000"), a.code, a.status, a.eventID, a.err)
	}
	return b.String()
}

func fmtWindows(ws []window) string {
	var b strings.Builder
	for _, w := range ws {
		fmt.Fprintf(&b, "[%s %s–%s]", w.what, w.start.Format("15:04:05.000"), w.end.Format("15:04:05.000"))
	}
	return b.String()
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// waitDrained polls /metrics of the first relay in admin that answers until
// relay_queue_depth is 0 for every destination, bounded by size.drain. A
// dead-lettered delivery fails the test: with unlimited attempts there
// should be none.
func waitDrained(t *testing.T, admin []string) {
	t.Helper()
	deadline := time.Now().Add(size.drain)
	last := "no answer"
	for time.Now().Before(deadline) {
		for _, a := range admin {
			queued, dead, err := depths(a)
			if err != nil {
				last = err.Error()
				continue
			}
			if dead > 0 {
				t.Errorf("relay_dlq_depth = %v, want 0", dead)
			}
			if queued == 0 {
				return
			}
			last = fmt.Sprintf("relay_queue_depth sums to %v", queued)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Errorf("the queue did not drain within %v: %s", size.drain, last)
}

// depths reads the summed queue depth and the DLQ depth from /metrics.
func depths(admin string) (queued, dead float64, err error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(admin + "/metrics")
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("/metrics: %s", resp.Status)
	}
	sawQueue := false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, val, found := strings.Cut(line, " ")
		if !found || strings.HasPrefix(line, "#") {
			continue
		}
		v, perr := strconv.ParseFloat(val, 64)
		if perr != nil {
			continue
		}
		switch {
		case strings.HasPrefix(name, "relay_queue_depth{"):
			queued += v
			sawQueue = true
		case name == "relay_dlq_depth":
			dead = v
		}
	}
	if !sawQueue {
		return 0, 0, fmt.Errorf("/metrics has no relay_queue_depth")
	}
	return queued, dead, sc.Err()
}

// recordLedger appends l as a JSON line to $FAULTS_LEDGER when set, so a
// long run leaves the numbers docs/reliability.md quotes.
func recordLedger(t *testing.T, l ledger) {
	path := os.Getenv("FAULTS_LEDGER")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Errorf("FAULTS_LEDGER: %v", err)
		return
	}
	defer f.Close()
	b, _ := json.Marshal(l)
	fmt.Fprintf(f, "%s\n", b)
}
