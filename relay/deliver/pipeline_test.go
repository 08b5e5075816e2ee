package deliver

import (
	"bytes"
	"encoding/pem"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// TestAgentPipelineBuildsNoClient checks that the pipeline of an agent
// destination, whose attempts the agent makes, builds no HTTP client, but
// reads its tls.ca_file, which goes to the agent with its insecure flag;
// an unreadable ca_file is refused there as for a direct destination.
func TestAgentPipelineBuildsNoClient(t *testing.T) {
	srv := httptest.NewTLSServer(nil)
	srv.Close()
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	d := dest("d", "https://receiver.internal/hook")
	d.Agent = "office-1"
	d.TLS.CAFile = caFile
	d.TLS.InsecureSkipVerify = true
	opts := testOptions().withDefaults()

	pl, err := newPipeline(nil, d, &opts)
	if err != nil {
		t.Fatalf("newPipeline: %v", err)
	}
	p := pl.profile()
	if p.ep.client != nil || p.ep.hops != nil {
		t.Error("an agent destination's pipeline built an HTTP client nobody uses")
	}
	if !bytes.Equal(p.tls.CAPEM, caPEM) || !p.tls.InsecureSkipVerify {
		t.Errorf("tls = %q, insecure %v; want the ca_file's PEM, insecure", p.tls.CAPEM, p.tls.InsecureSkipVerify)
	}
	d.TLS.CAFile = filepath.Join(t.TempDir(), "missing.pem")
	for _, agent := range []string{"office-1", ""} {
		d.Agent = agent
		if _, err := newProfile(d, &opts); !errors.Is(err, ErrBadDestination) {
			t.Errorf("agent %q: newProfile with an unreadable ca_file: %v, want ErrBadDestination", agent, err)
		}
	}
}
