package relay

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// shutdown drains the relay in order: new callbacks get 503 (the listener
// stays open, so providers see a retryable answer rather than a refused
// connection) while those already inside finish their durable write; the
// delivery workers stop leasing, attempts in flight finish within
// ShutdownTimeout and those still running then are cancelled and released
// back to the queue, due at once; then the listeners close and the store
// is closed.
func (s *Server) shutdown(stopDeliver func(), delivered <-chan error) {
	start := time.Now()
	s.log.Info("relay: draining: new callbacks get 503, in-flight deliveries finish", "deadline", s.opts.ShutdownTimeout)
	s.door.close()
	wctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	if err := s.door.wait(wctx); err != nil {
		s.log.Warn("relay: callbacks still being written at the drain deadline", "err", err)
	}
	cancel()
	stopDeliver()
	if err := <-delivered; err != nil {
		s.log.Warn("relay: delivery shutdown", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	if err := s.ingestSrv.Shutdown(sctx); err != nil {
		s.log.Warn("relay: ingest shutdown", "err", err)
	}
	if err := s.adminSrv.Shutdown(sctx); err != nil {
		s.log.Warn("relay: admin shutdown", "err", err)
	}
	if err := s.store.Close(); err != nil {
		s.log.Warn("relay: close store", "err", err)
	}
	s.log.Info("relay: stopped", "drain", time.Since(start).Round(time.Millisecond))
}

// door stands in front of the ingest handlers so that a shutdown can stop
// taking callbacks without closing the listener: once closed it answers 503
// (the provider retries, and another relay or this one after its restart
// takes the callback), and wait lets the callbacks already inside finish
// their durable write.
type door struct {
	mu     sync.RWMutex
	shut   bool
	inside sync.WaitGroup
}

// wrap puts next behind the door.
func (g *door) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { g.serve(next, w, r) })
}

func (g *door) serve(next http.Handler, w http.ResponseWriter, r *http.Request) {
	g.mu.RLock()
	if g.shut {
		g.mu.RUnlock()
		w.Header().Set("Connection", "close")
		turnAway(w, "relay is shutting down; retry later")
		return
	}
	g.inside.Add(1)
	g.mu.RUnlock()
	defer g.inside.Done()
	next.ServeHTTP(w, r)
}

// close turns new requests away from now on.
func (g *door) close() {
	g.mu.Lock()
	g.shut = true
	g.mu.Unlock()
}

// closed reports whether close was called.
func (g *door) closed() bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.shut
}

// wait blocks until every request let in has been answered, or ctx ends.
func (g *door) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		g.inside.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// turnAway answers a callback the relay cannot take now (it is starting or
// shutting down) with a 503 the provider retries.
func turnAway(w http.ResponseWriter, msg string) {
	w.Header().Set("Retry-After", "5")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusServiceUnavailable)
	_ = json.NewEncoder(w).Encode(map[string]string{"status": "error", "error": msg})
}
