package relay

import (
	"context"
	"errors"
	"time"

	"github.com/relaygw/relay/relay/store"
)

// expireParkedLoop deletes the parked events older than ingest.parked_ttl
// every interval until ctx ends. Both stores are swept the same way, with
// the cutoff computed here, so the running config's TTL (a reload may
// change it) is the one used.
func (s *Server) expireParkedLoop(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.expireParked(ctx, s.opts.Clock.Now()) // the clock ReceivedAt was read by
		}
	}
}

// expireParked runs one sweep as of now.
func (s *Server) expireParked(ctx context.Context, now time.Time) {
	ttl := s.live.Load().Ingest.ParkedTTL.D()
	n, err := s.store.ExpireParked(ctx, now.Add(-ttl))
	if n > 0 {
		s.metrics.ParkedExpired(n)
		s.log.Info("relay: parked events expired unreplayed", "events", n, "parked_ttl", ttl)
	}
	if err != nil && !errors.Is(err, store.ErrClosed) && ctx.Err() == nil {
		s.log.Warn("relay: expire parked events", "err", err)
	}
}
