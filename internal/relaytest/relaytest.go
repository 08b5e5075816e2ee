package relaytest

import (
	"context"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/relay"
)

// Relay is a relay running in the test's process.
type Relay struct {
	Server *relay.Server
	// Ingest and Admin are the listeners' base URLs (http://host:port).
	Ingest, Admin string

	cancel context.CancelFunc
	done   chan struct{} // closed when Run has returned
	err    error         // Run's error, set before done closes
}

// Start runs a relay from cfg until the test ends or Stop is called; a Run
// error fails the test. A zero opts.ShutdownTimeout becomes 5s.
func Start(t testing.TB, cfg *config.Config, opts relay.Options) *Relay {
	t.Helper()
	if opts.ShutdownTimeout == 0 {
		opts.ShutdownTimeout = 5 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := relay.New(ctx, cfg, opts)
	if err != nil {
		cancel()
		t.Fatalf("relay.New: %v", err)
	}
	r := &Relay{
		Server: srv,
		Ingest: "http://" + srv.IngestAddr().String(),
		Admin:  "http://" + srv.AdminAddr().String(),
		cancel: cancel,
		done:   make(chan struct{}),
	}
	go func() {
		r.err = srv.Run(ctx)
		close(r.done)
	}()
	t.Cleanup(func() {
		if err := r.Stop(); err != nil {
			t.Errorf("relay.Run: %v", err)
		}
	})
	return r
}

// Cancel starts the shutdown (as SIGTERM does) without waiting for it.
func (r *Relay) Cancel() { r.cancel() }

// Done is closed when Run has returned.
func (r *Relay) Done() <-chan struct{} { return r.done }

// Stop cancels Run and waits for it, returning Run's error; later calls
// return the same.
func (r *Relay) Stop() error {
	r.cancel()
	<-r.done
	return r.err
}
