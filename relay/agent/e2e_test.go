package agent_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/relaygw/relay/relay/agent"
	"github.com/relaygw/relay/relay/agent/agenttest"
	"github.com/relaygw/relay/relay/store"
)

// TestDeliversThroughProxy sends callbacks through relay → TLS → CONNECT
// proxy → agent → private sink and checks that they arrive byte for byte
// with Relay's headers, the destination's headers and a valid signature
// made by the relay.
func TestDeliversThroughProxy(t *testing.T) {
	const secret = "agent-test-signing-secret"
	e := newEnv(t, officeDest+"    headers: {X-Api-Key: k-office}\n    signing_secret: "+secret+"\n")
	c, _ := startAgent(t, e.clientOptions(e.proxy))

	ids := map[string]string{} // mid → event id
	for i := range 3 {
		mid := fmt.Sprintf("m-%d", i)
		ids[mid] = e.post(t, mid)
	}
	got := e.sink.answered(t, 3)
	for _, r := range got {
		mid := r.header.Get("Idempotency-Key")
		want := `{"mid":"` + mid + `","status":"ANSWER"}`
		if string(r.body) != want {
			t.Errorf("body %q, want %q", r.body, want)
		}
		checks := map[string]string{
			"X-Relay-Event-Id": ids[mid],
			"X-Relay-Attempt":  "1",
			"X-Api-Key":        "k-office",
			"Content-Type":     "application/json",
		}
		for k, v := range checks {
			if r.header.Get(k) != v {
				t.Errorf("%s: header %s = %q, want %q", mid, k, r.header.Get(k), v)
			}
		}
		if !validSignature(secret, r) {
			t.Errorf("%s: webhook-signature %q does not verify", mid, r.header.Get("webhook-signature"))
		}
	}
	if e.proxy.Tunnels() == 0 {
		t.Error("the agent reached the relay without going through the proxy")
	}
	if !c.Connected() {
		t.Error("agent reports itself disconnected while delivering")
	}
}

// validSignature verifies a Standard Webhooks signature from the spec:
// base64(HMAC-SHA256(secret, id.timestamp.body)).
func validSignature(secret string, r received) bool {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "%s.%s.%s", r.header.Get("webhook-id"), r.header.Get("webhook-timestamp"), r.body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	return r.header.Get("webhook-signature") == want
}

// TestAgentDiesMidDelivery kills an agent (its network first, so it cannot
// say goodbye, then its process) while the sink holds its request. The
// delivery must come back when the lease expires and reach the sink through
// a new agent, recorded once.
func TestAgentDiesMidDelivery(t *testing.T) {
	e := newEnv(t, officeDest)
	e.sink.hold()
	o := e.clientOptions(e.proxy)
	o.DrainTimeout = 1 // no drain: a dying agent finishes nothing
	_, kill := startAgent(t, o)

	id := e.post(t, "m-dies")
	waitFor(t, "the sink to hold the first attempt", func() bool { return e.sink.heldCount() == 1 })
	e.proxy.Close()
	kill()
	e.sink.stopHolding()

	second := agenttest.NewProxy(t)
	_, stop := startAgent(t, e.clientOptions(second))
	got := e.sink.answered(t, 1)
	if len(got) != 2 {
		t.Fatalf("sink saw %d requests, want the cut-off one and the re-offered one", len(got))
	}
	if got[0].done {
		t.Error("the first attempt was answered; the agent was supposed to die during it")
	}
	for _, h := range []string{"Idempotency-Key", "X-Relay-Event-Id"} {
		if got[0].header.Get(h) != got[1].header.Get(h) {
			t.Errorf("%s differs between the two attempts: %q, %q", h, got[0].header.Get(h), got[1].header.Get(h))
		}
	}
	if second.Tunnels() == 0 {
		t.Error("the second agent did not go through its proxy")
	}

	stop() // a graceful stop reports every outcome before Run returns
	d := e.inspect(t, id)
	if d.State != store.StateDelivered || d.Attempts != 1 || len(d.AttemptLog) != 1 || d.AttemptLog[0].Status != 200 {
		t.Errorf("delivery = state %s, %d attempts %+v; want delivered after one recorded attempt (the dead agent's was never reported)",
			d.State, d.Attempts, d.AttemptLog)
	}
}

// TestLiveAgentKeepsLease holds one attempt at the sink for several lease
// periods (delivery.lease) while a second agent polls for the same
// destination: the first agent's heartbeats, at the cadence the relay
// asks, keep the lease, so the delivery is neither offered again nor
// recorded twice. What is tested is the passing of real time beyond the
// lease, so the wait is for that, bounded by waitTimeout.
func TestLiveAgentKeepsLease(t *testing.T) {
	e := newEnv(t, officeDest)
	e.sink.hold()
	_, stop1 := startAgent(t, e.clientOptions(e.proxy))
	_, stop2 := startAgent(t, e.clientOptions(agenttest.NewProxy(t)))

	id := e.post(t, "m-slow")
	waitFor(t, "the sink to hold the attempt", func() bool { return e.sink.heldCount() == 1 })
	held := time.Now()
	waitFor(t, "three lease periods to pass during the attempt", func() bool {
		return time.Since(held) > 3*testLease
	})
	if n := len(e.sink.requests()); n != 1 {
		t.Fatalf("sink saw %d requests while a live agent held the delivery, want 1", n)
	}
	e.sink.unhold()
	e.sink.answered(t, 1)
	stop1() // a graceful stop reports every outcome before Run returns
	stop2()
	if d := e.inspect(t, id); d.State != store.StateDelivered || len(d.AttemptLog) != 1 {
		t.Errorf("delivery = state %s with %d attempts, want delivered after one", d.State, len(d.AttemptLog))
	}
}

// TestReconnects cuts the agent's connections at the TCP level, then makes
// them go silent (a black hole, as after a network change); each time the
// agent must notice by itself, reconnect and carry on.
func TestReconnects(t *testing.T) {
	e := newEnv(t, officeDest)
	c, _ := startAgent(t, e.clientOptions(e.proxy))

	e.post(t, "m-before")
	e.sink.answered(t, 1)

	before := e.proxy.Tunnels()
	e.proxy.Drop()
	e.post(t, "m-after-drop")
	e.sink.answered(t, 2)
	if e.proxy.Tunnels() <= before {
		t.Errorf("tunnels %d after the drop, %d before: the agent did not reconnect", e.proxy.Tunnels(), before)
	}

	before = e.proxy.Tunnels()
	e.proxy.Freeze()
	e.post(t, "m-after-freeze")
	e.sink.answered(t, 3)
	if e.proxy.Tunnels() <= before {
		t.Errorf("tunnels %d after the freeze, %d before: the agent did not replace the dead connection", e.proxy.Tunnels(), before)
	}
	if !strings.Contains(e.logs.String(), "connection to relay lost") {
		t.Error("the agent never logged that it lost the connection")
	}
	waitFor(t, "the agent to report itself connected", c.Connected)
}

// TestQueuesWithoutAgent accepts callbacks while no agent is connected: they
// wait, and all flow once one connects.
func TestQueuesWithoutAgent(t *testing.T) {
	e := newEnv(t, officeDest)
	const n = 5
	for i := range n {
		e.post(t, fmt.Sprintf("m-queued-%d", i))
	}
	if got := len(e.sink.requests()); got != 0 {
		t.Fatalf("sink got %d requests with no agent connected; only an agent may deliver", got)
	}
	startAgent(t, e.clientOptions(e.proxy))
	got := e.sink.answered(t, n)
	if len(got) != n {
		t.Errorf("sink got %d requests, want %d", len(got), n)
	}
}

// TestWrongToken checks that the relay refuses an agent with a wrong token
// or name (401, no detail), logs it without the token, and that the
// refused agent gets nothing.
func TestWrongToken(t *testing.T) {
	e := newEnv(t, officeDest)
	o := e.clientOptions(e.proxy)
	o.Token = "wrong-token-5d2e"
	bad, stopBad := startAgent(t, o)
	e.post(t, "m-refused")
	waitFor(t, "the agent to log the refusal", func() bool {
		return strings.Contains(e.logs.String(), "the relay refused the token (401)")
	})
	if bad.Connected() {
		t.Error("an agent with a wrong token reports itself connected")
	}
	if n := len(e.sink.requests()); n != 0 {
		t.Errorf("sink got %d requests from a refused agent", n)
	}
	stopBad()

	for _, tc := range []struct{ name, auth string }{
		{agentName, "Bearer wrong-token-5d2e"},
		{"office-9", "Bearer " + agentToken},
		{agentName, agentToken}, // not a bearer token
		{agentName, ""},
	} {
		req, _ := http.NewRequest(http.MethodPost, e.base+agent.PathLease, strings.NewReader(`{"max":1}`))
		req.Header.Set(agent.HeaderAgent, tc.name)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || strings.TrimSpace(string(body)) != `{"error":"unauthorized"}` {
			t.Errorf("%s %q: %d %s, want 401 with no detail", tc.name, tc.auth, resp.StatusCode, body)
		}
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "refused a request with a bad agent name or token") {
		t.Error("the relay did not log the refusals")
	}
	if strings.Contains(logs, "wrong-token-5d2e") || strings.Contains(logs, agentToken) {
		t.Error("a token appears in the log")
	}

	startAgent(t, e.clientOptions(e.proxy))
	e.sink.answered(t, 1)
}

// TestAgentsShareWork runs two agents of one name, each allowed one attempt
// at a time (and so holding at most holdFactor deliveries), against a sink
// that holds every request: with more deliveries queued than one agent may
// hold, two requests held at once can only come from two agents.
func TestAgentsShareWork(t *testing.T) {
	e := newEnv(t, officeDest)
	e.sink.hold()
	for range 2 {
		o := e.clientOptions(e.proxy)
		o.Concurrency = 1
		startAgent(t, o)
	}
	const n = 12 // well over the 4 (holdFactor × 1) one agent may hold
	for i := range n {
		e.post(t, fmt.Sprintf("m-share-%d", i))
	}
	waitFor(t, "both agents to attempt one delivery each", func() bool { return e.sink.heldCount() == 2 })
	e.sink.unhold()
	got := e.sink.answered(t, n)
	keys := map[string]bool{}
	for _, r := range got {
		keys[r.header.Get("Idempotency-Key")] = true
	}
	if len(got) != n || len(keys) != n {
		t.Errorf("sink got %d requests for %d deliveries; want each of the %d once", len(got), len(keys), n)
	}
}

// TestAgentAppliesTimeout: the agent cuts an attempt off at the
// destination's timeout, which the relay sends with the delivery; the relay
// records the timeout and retries.
func TestAgentAppliesTimeout(t *testing.T) {
	e := newEnv(t, officeDest+"    timeout: 300ms\n")
	e.sink.hold()
	_, stop := startAgent(t, e.clientOptions(e.proxy))
	id := e.post(t, "m-slow")
	waitFor(t, "the first attempt to reach the sink", func() bool { return e.sink.heldCount() == 1 })
	e.sink.stopHolding()
	got := e.sink.answered(t, 1)
	if n := got[len(got)-1].header.Get("X-Relay-Attempt"); n != "2" {
		t.Errorf("answered attempt is X-Relay-Attempt %s, want 2 (the first timed out)", n)
	}
	stop()
	d := e.inspect(t, id)
	if d.State != store.StateDelivered || len(d.AttemptLog) != 2 || !strings.Contains(d.AttemptLog[0].Error, "timed out") {
		t.Errorf("delivery %s, attempts %+v; want a timed-out attempt, then a delivered one", d.State, d.AttemptLog)
	}
}
