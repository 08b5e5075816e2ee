package agent_test

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaygw/relay/relay/store"
)

// TestAgentReceiverCA: an agent verifies an https receiver with its own
// machine's roots, so a receiver whose certificate a private CA issued is
// refused (a final failure, dead-lettered at once, as in direct delivery)
// until the agent is given that CA: by the agent's own
// ClientOptions.ReceiverCAs (`relay agent -receiver-ca`), or by the
// destination's tls settings on the relay, which reach the agent with its
// deliveries: a ca_file (read on the relay, the agent trusting nothing but
// its system roots) or insecure_skip_verify.
func TestAgentReceiverCA(t *testing.T) {
	tests := []struct {
		name        string
		receiverCA  bool   // the agent's -receiver-ca holds the sink's CA
		destTLS     string // the destination's tls mapping; "%s" is the CA file
		wantReached bool
	}{
		{"system roots only", false, "", false},
		{"private CA given to the agent", true, "", true},
		{"private CA in the destination's ca_file", false, "{ca_file: %s}", true},
		{"destination's insecure_skip_verify", false, "{insecure_skip_verify: true}", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sk := newTLSSink(t)
			extra := officeDest
			if tt.destTLS != "" {
				caFile := filepath.Join(t.TempDir(), "receiver-ca.pem")
				pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: sk.Certificate().Raw})
				if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
					t.Fatal(err)
				}
				extra += "    tls: " + strings.ReplaceAll(tt.destTLS, "%s", caFile) + "\n"
			}
			e := newEnvWith(t, sk, extra)
			o := e.clientOptions(e.proxy)
			if tt.receiverCA {
				o.ReceiverCAs = x509.NewCertPool()
				o.ReceiverCAs.AddCert(sk.Certificate())
			}
			_, stop := startAgent(t, o)
			id := e.post(t, "m-tls")
			if tt.wantReached {
				sk.answered(t, 1)
			} else {
				waitFor(t, "the failure to be recorded", func() bool { return e.office(t).LastError != "" })
			}
			stop()
			d := e.inspect(t, id)
			switch {
			case tt.wantReached && (d.State != store.StateDelivered || len(d.AttemptLog) != 1):
				t.Errorf("delivery %s, attempts %+v; want delivered at the first attempt", d.State, d.AttemptLog)
			case !tt.wantReached && (d.State != store.StateDead || len(d.AttemptLog) != 1 ||
				!strings.Contains(d.AttemptLog[0].Error, "certificate")):
				t.Errorf("delivery %s, attempts %+v; want dead-lettered after one attempt refused for its certificate", d.State, d.AttemptLog)
			}
		})
	}
}
