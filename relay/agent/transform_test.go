package agent_test

import (
	"strings"
	"testing"

	"github.com/relaygw/relay/relay/store"
)

// TestAgentSendsTransformedBody: a destination served by an agent is
// transformed on the relay, signed over the transformed body, and the agent
// sends exactly that; a delivery whose transform fails is dead-lettered by
// the relay and never handed to the agent.
func TestAgentSendsTransformedBody(t *testing.T) {
	const secret = "agent-test-signing-secret"
	e := newEnv(t, officeDest+"    signing_secret: "+secret+"\n"+
		"    transform: {body: '{call: (.mid|tonumber), status}', headers: {X-Mid: .mid}}\n")
	startAgent(t, e.clientOptions(e.proxy))

	bad := e.post(t, "m-x")
	e.post(t, "7")
	got := e.sink.answered(t, 1)[0]
	if string(got.body) != `{"call":7,"status":"ANSWER"}` || got.header.Get("X-Mid") != "7" || got.header.Get("Content-Type") != "application/json" {
		t.Errorf("received %s (X-Mid %q, Content-Type %q)", got.body, got.header.Get("X-Mid"), got.header.Get("Content-Type"))
	}
	if !validSignature(secret, got) {
		t.Errorf("webhook-signature %q does not verify over the transformed body", got.header.Get("webhook-signature"))
	}
	d := e.inspect(t, bad)
	if d.State != store.StateDead || d.Attempts != 1 || !strings.Contains(d.LastError, `jq: tonumber cannot be applied to "m-x"`) {
		t.Errorf("bad delivery: %s after %d attempts, last error %q; want dead with the jq error", d.State, d.Attempts, d.LastError)
	}
	if n := len(e.sink.requests()); n != 1 {
		t.Errorf("receiver got %d requests, want 1", n)
	}
}
