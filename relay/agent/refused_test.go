package agent

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaygw/relay/internal/testlog"
)

// An agent whose token the relay refuses backs off exponentially, with
// jitter, to about a minute, across all its loops; says which token was
// refused; and with MaxAuthFailures gives up with ErrAuthFailures. The
// sleeps are recorded and skipped, so the test counts the calls of a
// virtual window without waiting through it.
func TestRefusedAgentBacksOff(t *testing.T) {
	var calls atomic.Int64
	relay := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(relay.Close)
	var (
		mu    sync.Mutex
		waits []time.Duration
	)
	const maxRefusals = 14
	var logs testlog.Buffer
	c, err := NewClient(ClientOptions{
		Server: relay.URL, Insecure: true, Name: "office-1", Token: "wrong-token-value",
		TokenSource: "$RELAY_AGENT_TOKEN", MaxAuthFailures: maxRefusals,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Sleep: func(ctx context.Context, d time.Duration) bool {
			mu.Lock()
			waits = append(waits, d)
			mu.Unlock()
			return ctx.Err() == nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = c.Run(ctx)
	if !errors.Is(err, ErrAuthFailures) {
		t.Fatalf("Run = %v, want ErrAuthFailures", err)
	}
	// Loops whose call was in flight when the last refusal came may each
	// have made one more.
	if n := calls.Load(); n < maxRefusals || n > maxRefusals+pollers+reporters+1 {
		t.Errorf("%d calls, want %d refusals (plus at most one per loop)", n, maxRefusals)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(waits) != maxRefusals-1 {
		t.Fatalf("%d waits, want one after each refusal but the last: %v", len(waits), waits)
	}
	// The wait after refusal n lies in [d/2, d] with d = 500ms·2^(n-1)
	// capped at a minute. Loops append theirs concurrently, but sorted, the
	// k-th smallest wait still lies within the k-th bounds.
	slices.Sort(waits)
	var total time.Duration
	inFirstMinute, distinct := 0, map[time.Duration]bool{}
	for i, w := range waits {
		d := min(DefaultMinBackoff<<i, DefaultMaxBackoff)
		if w < d/2 || w > d {
			t.Errorf("wait %d = %v, want within [%v, %v]", i+1, w, d/2, d)
		}
		if total < time.Minute {
			inFirstMinute++
		}
		total += w
		distinct[w] = true
	}
	if inFirstMinute > 10 {
		t.Errorf("%d calls in the first minute of refusals, want at most 10", inFirstMinute)
	}
	if last := waits[len(waits)-1]; last < DefaultMaxBackoff/2 {
		t.Errorf("the waits never reached the cap: last %v", last)
	}
	if len(distinct) < len(waits)/2 {
		t.Errorf("waits without jitter: %v", waits)
	}
	out := logs.String()
	want := `the relay refused $RELAY_AGENT_TOKEN (401): it must equal the token of agent \"office-1\" in the relay's agents config`
	if n := strings.Count(out, want); n != maxRefusals-1 {
		t.Errorf("%d refusal lines naming the token, want %d:\n%s", n, maxRefusals-1, out)
	}
	if strings.Contains(out, "wrong-token-value") {
		t.Errorf("the log holds the token:\n%s", out)
	}
}
