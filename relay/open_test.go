package relay

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/relaygw/relay/relay/store"
	"github.com/relaygw/relay/relay/store/bolt"
)

// TestOpenUnlessStopped: a stop while the store opens returns at once,
// and the open that goes on closes what it opened, so relay.db's lock is
// free again when it ends.
func TestOpenUnlessStopped(t *testing.T) {
	dir := t.TempDir()
	release := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := openUnlessStopped(ctx, func() (store.Store, error) {
		<-release
		return bolt.Open(dir, bolt.Options{})
	})
	if !errors.Is(err, ErrStoppedOpening) || !errors.Is(err, context.Canceled) {
		t.Fatalf("stopped while opening: %v, want ErrStoppedOpening and the context's error", err)
	}
	close(release)
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := bolt.Open(dir, bolt.Options{OpenTimeout: 50 * time.Millisecond})
		if err == nil {
			st.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("relay.db still locked after the abandoned open ended: %v", err)
		}
	}

	st, err := openUnlessStopped(context.Background(), func() (store.Store, error) { return bolt.Open(dir, bolt.Options{}) })
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
}
