package deliver

import (
	"errors"
	"path/filepath"
	"testing"
)

// TestRemoteBuildsNoClient checks that a Remote, whose attempts an agent
// makes, neither builds an HTTP client nor reads tls settings, while the
// same destination delivered directly needs a readable tls.ca_file.
func TestRemoteBuildsNoClient(t *testing.T) {
	d := dest("d", "https://receiver.internal/hook")
	d.TLS.CAFile = filepath.Join(t.TempDir(), "missing.pem")
	opts := testOptions().withDefaults()

	r, err := NewRemote(d, opts)
	if err != nil {
		t.Fatalf("NewRemote: %v", err)
	}
	if r.p.ep.client != nil {
		t.Error("NewRemote built an HTTP client nobody uses")
	}
	if _, err := newProfile(d, &opts); !errors.Is(err, ErrBadDestination) {
		t.Errorf("newProfile with an unreadable ca_file: %v, want ErrBadDestination", err)
	}
}
