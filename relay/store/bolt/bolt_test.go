package bolt

import (
	"log/slog"
	"testing"

	"github.com/relaygw/relay/internal/clock"
	"github.com/relaygw/relay/relay/store"
	"github.com/relaygw/relay/relay/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t testing.TB) storetest.Opener {
		dir := t.TempDir()
		// After every handle is closed, the counters must match the data.
		t.Cleanup(func() {
			s := openTest(t, dir)
			defer s.Close()
			checkIntegrity(t, s)
		})
		return func(t testing.TB) store.Store {
			return openTest(t, dir)
		}
	})
}

// openTest opens the store in dir, logging to the test.
func openTest(t testing.TB, dir string) *Store {
	t.Helper()
	return openWith(t, dir, Options{})
}

// openClocked is openTest with the store reading clk.
func openClocked(t testing.TB, dir string, clk clock.Clock) *Store {
	t.Helper()
	return openWith(t, dir, Options{Clock: clk})
}

// openWith is openTest with opts.
func openWith(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	opts.Logger = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
