package agent_test

import (
	"crypto/x509"
	"strings"
	"testing"

	"github.com/relaygw/relay/relay/store"
)

// TestAgentReceiverCA: an agent verifies an https receiver with its own
// machine's roots, so a receiver whose certificate a private CA issued is
// refused (a final failure, dead-lettered at once, as in direct delivery)
// until the agent is given that CA (ClientOptions.ReceiverCAs, which
// `relay agent -receiver-ca` fills).
func TestAgentReceiverCA(t *testing.T) {
	for _, trust := range []bool{false, true} {
		name := map[bool]string{false: "system roots only", true: "private CA given"}[trust]
		t.Run(name, func(t *testing.T) {
			sk := newTLSSink(t)
			e := newEnvWith(t, sk, officeDest)
			o := e.clientOptions(e.proxy)
			if trust {
				o.ReceiverCAs = x509.NewCertPool()
				o.ReceiverCAs.AddCert(sk.Certificate())
			}
			_, stop := startAgent(t, o)
			id := e.post(t, "m-tls")
			if trust {
				sk.answered(t, 1)
			} else {
				waitFor(t, "the failure to be recorded", func() bool { return e.office(t).LastError != "" })
			}
			stop()
			d := e.inspect(t, id)
			switch {
			case trust && (d.State != store.StateDelivered || len(d.AttemptLog) != 1):
				t.Errorf("delivery %s, attempts %+v; want delivered at the first attempt", d.State, d.AttemptLog)
			case !trust && (d.State != store.StateDead || len(d.AttemptLog) != 1 ||
				!strings.Contains(d.AttemptLog[0].Error, "certificate")):
				t.Errorf("delivery %s, attempts %+v; want dead-lettered after one attempt refused for its certificate", d.State, d.AttemptLog)
			}
		})
	}
}
