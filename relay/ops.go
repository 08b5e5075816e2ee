package relay

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/relay/admin"
	"github.com/relaygw/relay/relay/admin/ui"
	"github.com/relaygw/relay/relay/deliver"
	"github.com/relaygw/relay/relay/ingest"
	"github.com/relaygw/relay/relay/state"
	"github.com/relaygw/relay/relay/store"
	"github.com/relaygw/relay/relay/transform"
)

// The hooks the admin API and the metrics reach the running relay through.

// adminOptions wires the admin handler to this server.
func (s *Server) adminOptions() admin.Options {
	return admin.Options{
		Store:        s.store,
		Token:        s.cfg.Admin.Token,
		Logger:       s.log,
		Metrics:      s.metrics,
		Route:        s.route,
		Wake:         s.wake,
		Replayed:     s.replayed,
		Destinations: s.destinationStates,
		Reload:       s.Reload,
		Draining:     s.door.closed,
		Sent:         s.sent,
		Portals:      portals(s.cfg),
		Tail:         s.tail,
		Config:       s.live.Load,
		LastReload:   s.lastReload.Load,
		Console:      ui.Handler(),
		Pprof:        s.cfg.Admin.Pprof,
		MetricsAuth:  s.cfg.Admin.MetricsAuth,
		Source:       s.adminClient,
	}
}

// adminClient is who a failed admin authentication counts against: the
// client behind admin.trusted_proxies, else the TCP peer. Behind a reverse
// proxy every request's peer is the proxy, and one stranger's failures
// would lock every operator out.
func (s *Server) adminClient(r *http.Request) string {
	var trusted []netip.Prefix
	if p := s.adminProxies.Load(); p != nil {
		trusted = *p
	}
	return ingest.ClientIP(r.RemoteAddr, r.Header.Values("X-Forwarded-For"), trusted).String()
}

// adminProxies parses cfg's admin.trusted_proxies for adminClient.
func adminProxies(cfg *config.Config) (*[]netip.Prefix, error) {
	list, err := config.ParseCIDRs(cfg.Admin.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("admin.trusted_proxies: %w", err)
	}
	return &list, nil
}

// sent runs dest's transform, under the running config, on ev: what a
// pending delivery will be sent (transforms run at delivery time).
func (s *Server) sent(ctx context.Context, ev store.Event, dest string) (admin.Sent, bool) {
	d, ok := s.live.Load().Destination(dest)
	if !ok || d.Transform == nil {
		return admin.Sent{}, false
	}
	t, err := transform.New(*d.Transform)
	if err != nil {
		return admin.Sent{Err: err}, true
	}
	out, err := transform.Run(ctx, t, ev.ContentType, ev.Body, transform.DefaultLimits())
	if err != nil {
		return admin.Sent{Err: err}, true
	}
	body, ct := out.Sent(ev.Body, ev.ContentType)
	return admin.Sent{ContentType: ct, Header: out.Header, Body: body}, true
}

// portals lists cfg's client portals for the admin API.
func portals(cfg *config.Config) []admin.Portal {
	out := make([]admin.Portal, len(cfg.Portals))
	for i, p := range cfg.Portals {
		out[i] = admin.Portal{Name: p.Name, Token: p.Token, Destinations: p.Destinations}
	}
	return out
}

// tailAttempt publishes an attempt's outcome to the live tail.
func (s *Server) tailAttempt(d store.Delivery, a store.Attempt, o deliver.Outcome) {
	s.tail.Publish(admin.TailItem{
		Kind: admin.TailAttempt, At: a.At, EventID: d.EventID, DeliveryID: d.ID, Destination: d.Destination,
		Outcome: string(o), Attempt: a.N, Status: a.Status, Error: a.Error,
		DurationMS: float64(a.Duration) / float64(time.Millisecond),
	})
}

// tailEvent publishes a callback ingest answered to the live tail.
func (s *Server) tailEvent(ev store.Event, outcome string) {
	s.tail.Publish(admin.TailItem{
		Kind: admin.TailEvent, At: ev.ReceivedAt, EventID: ev.ID, WebhookID: ev.WebhookID,
		DedupeKey: ev.DedupeKey, Outcome: outcome, Destinations: ev.Destinations,
	})
}

// onAttempt counts a delivery attempt, local or by an agent.
func (s *Server) onAttempt(dest string, o deliver.Outcome, _ int, took time.Duration) {
	s.metrics.Delivery(dest, string(o), took)
}

// route returns where the running routes send a stored event: the fields
// are read again from the stored body, as ingest read them, so a parked
// event replays exactly as if it arrived now.
func (s *Server) route(ev store.Event) []string {
	t := s.router.Load()
	var fields ingest.Fields
	kind := ingest.Kind(ev.ContentType, ev.Body)
	if t.NeedsBody(ev.WebhookID) {
		// An unreadable body routes like one without the fields.
		fields, _ = ingest.Extract(kind, ev.Body)
	}
	return t.MatchInput(context.Background(), ev.WebhookID, fields, func() (any, error) {
		return ingest.Value(kind, ev.Body)
	})
}

// orAll returns dests, or every configured destination's name when dests
// is empty.
func (s *Server) orAll(dests []string) []string {
	if len(dests) > 0 {
		return dests
	}
	return destinationNames(s.live.Load())
}

// wake tells the workers (local or agents) of dests, or of every
// configured destination when none is named, that deliveries are due.
func (s *Server) wake(dests ...string) {
	for _, d := range s.orAll(dests) {
		s.deliver.Wake(d)
		if s.agents != nil {
			s.agents.Wake(d)
		}
	}
}

// replayed tells the workers of dests, or of every configured destination
// when none is named, that an operator replayed deliveries: an open circuit
// sends the first at once as its probe.
func (s *Server) replayed(dests ...string) {
	for _, d := range s.orAll(dests) {
		s.deliver.Replayed(d)
		if s.agents != nil {
			s.agents.Replayed(d)
		}
	}
}

// destinationStates reports every configured destination, in config order,
// as delivery knows it, with whether its agent, if any, is connected.
func (s *Server) destinationStates() []state.Destination {
	out := s.deliver.States()
	for i, st := range out {
		if st.Agent != "" && s.agents != nil {
			connected := s.agents.Connected(st.Agent)
			out[i].AgentConnected = &connected
		}
	}
	return out
}
