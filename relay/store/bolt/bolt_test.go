package bolt

import (
	"log/slog"
	"testing"

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
	s, err := Open(dir, Options{Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
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
