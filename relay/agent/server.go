package agent

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/authguard"
	"github.com/relaygw/relay/internal/clock"
	"github.com/relaygw/relay/relay/deliver"
	"github.com/relaygw/relay/relay/store"
)

// Defaults for ServerOptions.
const (
	// DefaultPollWait is the longest the relay holds a lease poll open with
	// nothing to hand out: under the 60 s idle timeout of common proxies.
	DefaultPollWait = 25 * time.Second
)

// Limits on one request, so an agent (even an authenticated one) cannot
// make the relay buffer or work without bound.
const (
	maxLeaseBatch   = 100
	maxReportItems  = 1000
	maxRequestBytes = 8 << 20
	// deadlineGrace is added to a poll's wait for the connection deadlines.
	deadlineGrace = 10 * time.Second
	// storeCallTimeout bounds the store calls of one report.
	storeCallTimeout = store.CallTimeout
	// waitParallel bounds the store calls one report waits for at once
	// (releases, lease extensions); they run together so the embedded store
	// commits them in one group. Settled outcomes need no goroutine.
	waitParallel = 32
)

// ServerOptions tunes a Server. The zero value is usable.
type ServerOptions struct {
	// Logger receives connection changes, refusals and outcomes; default
	// slog.Default().
	Logger *slog.Logger
	// Lease is the visibility timeout of a delivery handed to an agent; the
	// agent extends it every Lease/3 while it holds the delivery. The relay
	// passes delivery.lease; default config.DefaultLease.
	Lease time.Duration
	// PollWait caps how long a lease poll is held open; default
	// DefaultPollWait.
	PollWait time.Duration
	// PollInterval is how often a held poll looks for deliveries that no
	// Wake announced (retries coming due); default 500ms.
	PollInterval time.Duration
	// Clock is the clock for leases, signatures, max_age and the circuit's
	// admissions; default clock.Real. The destinations' pipelines have
	// their own for due times (deliver.Options.Clock).
	Clock clock.Clock
	// Throttle counts failed authentications per source address; default
	// one with config's DefaultAuthFailure* settings.
	Throttle *authguard.Throttle
	// Source returns the address a request's failed authentications count
	// against: behind a load balancer, the client it forwards for, not the
	// balancer. Default r.RemoteAddr.
	Source func(r *http.Request) string
}

func (o ServerOptions) withDefaults() ServerOptions {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Lease <= 0 {
		o.Lease = config.DefaultLease
	}
	if o.PollWait <= 0 {
		o.PollWait = DefaultPollWait
	}
	if o.PollInterval <= 0 {
		o.PollInterval = config.DefaultPollInterval
	}
	o.Clock = clock.Or(o.Clock)
	if o.Throttle == nil {
		o.Throttle = authguard.NewThrottle(authguard.Options{Burst: config.DefaultAuthFailureBurst,
			Every: config.DefaultAuthFailureEvery, MaxSources: config.DefaultAuthFailureSources})
	}
	if o.Source == nil {
		o.Source = func(r *http.Request) string { return r.RemoteAddr }
	}
	return o
}

// heartbeat is how often agents must report: three chances per lease.
func (o ServerOptions) heartbeat() time.Duration { return o.Lease / 3 }

// Server is the relay's end of the agent protocol, a transport: it leases
// the deliveries of agent destinations from the store on behalf of the
// agents that poll for them, extends those leases on the agents'
// heartbeats, and hands the results they report to the destination's
// deliver.Pipeline, which settles them as it settles a local worker's. An
// agent that vanishes simply stops extending, and the store hands its
// deliveries out again when the leases expire. What a report changes is
// decided by the relay's record of the lease, never by what the agent
// sends back (authority.go).
type Server struct {
	q     Queue
	pipes Pipelines
	opts  ServerOptions
	log   *slog.Logger
	tbl   atomic.Pointer[table]
	dummy authguard.Digest // compared against when the agent name is unknown
	rot   atomic.Uint64    // rotates which destination a poll serves first

	mu      sync.Mutex
	agents  map[string]*presence
	flights map[string]map[string]time.Time // destination → delivery → lease expiry
	// held is the relay's own record of the leases handed to agents, by
	// delivery id (authority.go); swept of expired ones at nextSweep.
	held      map[string]held
	nextSweep time.Time
	// probes are the circuits' probe deliveries out now, by destination.
	probes map[string]probeHold

	storeFailing atomic.Bool
	quit         chan struct{}
	closeOnce    sync.Once
}

// presence is what the server knows of the agents of one name.
type presence struct {
	lastSeen  time.Time
	connected bool          // as last logged
	wake      chan struct{} // closed and replaced by each wake-up
	// armed is set when wake is handed to a poll; a wake-up with nobody
	// holding the channel has no one to tell, so it closes nothing and
	// allocates nothing (ingest wakes on every accepted callback).
	armed bool
}

// table is the compiled config: swapped whole on Reload.
type table struct {
	tokens  map[string]authguard.Digest // agent name → digest of its token
	order   []string                    // agent names, config order
	byAgent map[string][]*destination
	byName  map[string]*destination
}

// destination is an agent destination as the transport needs it: who
// serves it. Everything else comes from its pipeline.
type destination struct {
	name  string
	agent string
}

// Queue is the store as the agent server uses it: leases, and the delivery
// records, to check a report of a lease that another relay process handed
// out (authority.go). Outcomes are written by the pipelines.
type Queue interface {
	Lease(ctx context.Context, dest string, n int, lease time.Duration) ([]store.Delivery, error)
	ExtendLease(ctx context.Context, d store.Delivery, lease time.Duration) error
	Release(ctx context.Context, d store.Delivery, due time.Time) error
	Event(ctx context.Context, id string) (store.EventRecord, error)
}

// Pipelines finds a destination's delivery pipeline: deliver.Manager, whose
// destinations must be updated before the server's on a reload.
type Pipelines interface {
	Pipeline(dest string) *deliver.Pipeline
}

// NewServer compiles cfg's agents and agent destinations. q is the store;
// pipes settles what the agents report.
func NewServer(q Queue, pipes Pipelines, cfg *config.Config, opts ServerOptions) (*Server, error) {
	s := &Server{
		q:       q,
		pipes:   pipes,
		opts:    opts.withDefaults(),
		agents:  map[string]*presence{},
		flights: map[string]map[string]time.Time{},
		held:    map[string]held{},
		probes:  map[string]probeHold{},
		quit:    make(chan struct{}),
	}
	s.log = s.opts.Logger
	s.dummy = authguard.NewDigest(rand.Text())
	if err := s.Reload(cfg); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload swaps in cfg's agents and agent destinations. Polls in progress
// finish under the old ones; deliveries already handed out are settled
// under the new destination settings. The probes of destinations no longer
// served by an agent are forgotten.
func (s *Server) Reload(cfg *config.Config) error {
	t, err := compile(cfg, s.pipes)
	if err != nil {
		return err
	}
	s.mu.Lock()
	for dest := range s.probes {
		if t.byName[dest] == nil {
			delete(s.probes, dest)
		}
	}
	s.mu.Unlock()
	s.tbl.Store(t)
	return nil
}

func compile(cfg *config.Config, pipes Pipelines) (*table, error) {
	t := &table{
		tokens:  map[string]authguard.Digest{},
		byAgent: map[string][]*destination{},
		byName:  map[string]*destination{},
	}
	for _, a := range cfg.Agents {
		if _, dup := t.tokens[a.Name]; dup || a.Name == "" || a.Token == "" {
			return nil, fmt.Errorf("%w: agent %q: missing or duplicate name, or no token", ErrBadConfig, a.Name)
		}
		t.tokens[a.Name] = authguard.NewDigest(a.Token)
		t.order = append(t.order, a.Name)
	}
	for _, d := range cfg.Destinations {
		if d.Agent == "" {
			continue
		}
		if _, ok := t.tokens[d.Agent]; !ok {
			return nil, fmt.Errorf("%w: destination %q: unknown agent %q", ErrBadConfig, d.Name, d.Agent)
		}
		if pipes.Pipeline(d.Name) == nil {
			return nil, fmt.Errorf("%w: destination %q: no delivery pipeline (update the delivery manager first)", ErrBadConfig, d.Name)
		}
		cd := &destination{name: d.Name, agent: d.Agent}
		t.byAgent[d.Agent] = append(t.byAgent[d.Agent], cd)
		t.byName[d.Name] = cd
	}
	return t, nil
}

// Handler serves the agent protocol under PathPrefix, alone (tests); the
// relay mounts it on its ingest listener's router instead (Mount).
func (s *Server) Handler() http.Handler {
	r := mux.NewRouter()
	s.Mount(r)
	return r
}

// Mount adds the agent protocol to r under PathPrefix, with plain-text 404
// and 405 answers of its own there: r's (ingest's) are for providers. The
// 405s are routes of their own because a gorilla/mux subrouter loses a
// method mismatch to its next route.
func (s *Server) Mount(r *mux.Router) {
	notAllowed := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
	})
	for _, rt := range []struct {
		path  string
		serve http.HandlerFunc
	}{{PathLease, s.serveLease}, {PathReport, s.serveReport}} {
		r.Handle(rt.path, rt.serve).Methods(http.MethodPost)
		r.Handle(rt.path, notAllowed)
	}
	r.PathPrefix(PathPrefix).Handler(http.NotFoundHandler())
}

// Wake tells the agents serving dest that a delivery is due now, so a held
// poll hands it out at once. It never blocks; other destinations are
// ignored.
func (s *Server) Wake(dest string) {
	if d := s.tbl.Load().byName[dest]; d != nil {
		s.wakeAgent(d.agent)
	}
}

// Replayed tells dest's agent that an operator replayed deliveries of it:
// an open circuit hands out a probe at the next poll instead of waiting out
// the cooldown, and the agent's held poll is woken.
func (s *Server) Replayed(dest string) {
	if d := s.tbl.Load().byName[dest]; d != nil {
		if pipe := s.pipes.Pipeline(dest); pipe != nil {
			pipe.ProbeNow(s.opts.Clock.Now())
		}
		s.wakeAgent(d.agent)
	}
}

// Close ends held polls (they answer with nothing) and refuses new ones, so
// the HTTP server can shut down without waiting for them. Reports are still
// recorded. Call it when the relay begins to shut down.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.quit) })
}

func (s *Server) closed() bool {
	select {
	case <-s.quit:
		return true
	default:
		return false
	}
}

// State is what the relay knows of the agents of one name.
type State struct {
	Name string `json:"name"`
	// Connected is true when an agent of this name was heard from within
	// the last lease period.
	Connected bool      `json:"connected"`
	LastSeen  time.Time `json:"last_seen,omitzero"`
	// Destinations are the destinations this agent serves.
	Destinations []string `json:"destinations"`
	// InFlight counts deliveries handed to agents of this name by this
	// process and not yet reported (or expired).
	InFlight int `json:"in_flight"`
}

// States reports every configured agent, in config order.
func (s *Server) States() []State {
	t := s.tbl.Load()
	out := make([]State, 0, len(t.order))
	for _, name := range t.order {
		st := State{Name: name, Destinations: []string{}}
		st.Connected, st.LastSeen = s.presenceOf(name)
		for _, d := range t.byAgent[name] {
			st.Destinations = append(st.Destinations, d.name)
			st.InFlight += s.inFlight(d.name)
		}
		out = append(out, st)
	}
	return out
}

// Connected reports whether an agent called name was heard from within the
// last lease period.
func (s *Server) Connected(name string) bool {
	c, _ := s.presenceOf(name)
	return c
}

// presenceOf computes name's connection state, logging a change to
// disconnected when it notices one.
func (s *Server) presenceOf(name string) (bool, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.agents[name]
	if p == nil {
		return false, time.Time{}
	}
	c := s.opts.Clock.Now().Sub(p.lastSeen) < s.opts.Lease
	if p.connected && !c {
		p.connected = false
		s.log.Warn("agent: disconnected; its deliveries wait until an agent connects", "agent", name, "last_seen", p.lastSeen)
	}
	return c, p.lastSeen
}

// presence returns name's record; s.mu must be held.
func (s *Server) presence(name string) *presence {
	p := s.agents[name]
	if p == nil {
		p = &presence{wake: make(chan struct{})}
		s.agents[name] = p
	}
	return p
}

func (s *Server) seen(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.presence(name)
	p.lastSeen = s.opts.Clock.Now()
	if !p.connected {
		p.connected = true
		s.log.Info("agent: connected", "agent", name)
	}
}

func (s *Server) wakeAgent(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.presence(name)
	if !p.armed {
		return
	}
	close(p.wake)
	p.wake = make(chan struct{})
	p.armed = false
}

func (s *Server) wakeChan(name string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.presence(name)
	p.armed = true
	return p.wake
}

// auth checks the agent's name and token in constant time and answers 401
// when they do not match. The log line says only that it happened: which of
// the two was wrong would help someone guessing. A source that failed too
// often is answered 429 without its credentials being looked at.
func (s *Server) auth(w http.ResponseWriter, r *http.Request) (string, bool) {
	src := s.opts.Source(r)
	if wait := s.opts.Throttle.Wait(src); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(authguard.RetryAfter(wait)))
		writeJSON(w, http.StatusTooManyRequests, errorResponse{Error: "too many failed authentications"})
		return "", false
	}
	name := r.Header.Get(HeaderAgent)
	tok, bearer := authguard.BearerToken(r.Header.Get("Authorization"))
	want, known := s.tbl.Load().tokens[name]
	if !known {
		want = s.dummy
	}
	if !want.Equal(tok) || !known || !bearer {
		s.opts.Throttle.Fail(src)
		s.log.Warn("agent: refused a request with a bad agent name or token", "remote", r.RemoteAddr, "client", src)
		w.Header().Set("WWW-Authenticate", `Bearer realm="relay-agent"`)
		writeJSON(w, http.StatusUnauthorized, errorResponse{Error: "unauthorized"})
		return "", false
	}
	s.seen(name)
	return name, true
}

// decodeRequest reads a JSON body of at most maxRequestBytes, answering 413
// or 400 itself when it cannot.
func decodeRequest(w http.ResponseWriter, r *http.Request, v any) bool {
	err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBytes)).Decode(v)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeJSON(w, http.StatusRequestEntityTooLarge, errorResponse{Error: "request too large"})
		return false
	case err != nil:
		writeJSON(w, http.StatusBadRequest, errorResponse{Error: "request is not valid JSON"})
		return false
	}
	return true
}

// writeJSON writes v with its length and flushes it, so a failed write is
// seen here and the answer is complete once written.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	if _, err := w.Write(b); err != nil {
		return err
	}
	return http.NewResponseController(w).Flush()
}
