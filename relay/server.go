package relay

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/clock"
	"github.com/relaygw/relay/internal/quietlog"
	"github.com/relaygw/relay/relay/admin"
	"github.com/relaygw/relay/relay/agent"
	"github.com/relaygw/relay/relay/deliver"
	"github.com/relaygw/relay/relay/ingest"
	"github.com/relaygw/relay/relay/route"
	"github.com/relaygw/relay/relay/store"
	"github.com/relaygw/relay/relay/store/bolt"
	redisstore "github.com/relaygw/relay/relay/store/redis"
)

// Options are the process-level settings that do not come from the config
// file.
type Options struct {
	Logger  *slog.Logger
	Version string
	// ShutdownTimeout bounds each shutdown step (ingest drain, delivery drain).
	ShutdownTimeout time.Duration
	// AgentLease is how long a delivery handed to an agent stays leased
	// without the agent's heartbeat; default delivery.lease, as for local
	// workers (tests shorten it without a config).
	AgentLease time.Duration
	// ParkedSweepInterval is how often parked events past
	// ingest.parked_ttl are deleted; default a minute.
	ParkedSweepInterval time.Duration
	// Load reads the config file on reload, with the same listener
	// overrides the process started with; default config.LoadFile.
	Load func(path string) (*config.Config, error)
	// Clock is the relay's time, given to the store, delivery, ingest's
	// received-at and the agent server; default clock.Real. Tests step it.
	Clock clock.Clock
	// WrapStore, if set, is given the store the config opened and returns
	// the one the relay uses: tests hold its writes.
	WrapStore func(store.Store) store.Store
}

// Server is one running relay: listeners, store and delivery workers.
type Server struct {
	cfg     *config.Config
	opts    Options
	log     *slog.Logger
	store   store.Store
	ingest  *ingest.Handler
	deliver *deliver.Manager
	agents  *agent.Server

	// Operating state: metrics, the admin API, the ingest door that a
	// drain closes, and what Reload swaps.
	metrics  *admin.Metrics
	admin    *admin.Handler
	door     *door
	router   atomic.Pointer[route.Table]   // running routes, for parked replay
	live     atomic.Pointer[config.Config] // running config
	reloadMu sync.Mutex
	// tail feeds the admin API's live tail; lastReload is the last
	// reload's result for the console.
	tail       *admin.Tail
	lastReload atomic.Pointer[admin.ReloadResult]
	// adminProxies are admin.trusted_proxies, parsed (adminClient).
	adminProxies atomic.Pointer[[]netip.Prefix]

	ingestLn, adminLn   net.Listener
	ingestSrv, adminSrv *http.Server
	// ingestH and adminH are what the servers serve: the starting answers
	// until the store is open, then the relay's handlers.
	ingestH, adminH swapHandler
	served          chan error // each server's end, for Run
	opened          time.Duration
}

// New binds both listeners and answers on them at once, then opens the
// store: while it opens (reading a large relay.db takes seconds) ingest
// answers 503 with Retry-After and the admin listener /healthz 200 and
// everything else 503, so providers retry and liveness probes see a live
// process instead of a refused connection. Once New returns, both
// listeners serve the relay (a config may ask for port 0: the addresses
// are known); Run starts delivery, serves until ctx ends and drains, and
// is the only way to stop a Server that New returned.
func New(ctx context.Context, cfg *config.Config, opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	// One line per repeated error and interval: during an outage every
	// callback and delivery fails the same way.
	opts.Logger = slog.New(quietlog.New(opts.Logger.Handler(), quietlog.Options{}))
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = config.DefaultDrainTimeout
	}
	if opts.ParkedSweepInterval <= 0 {
		opts.ParkedSweepInterval = time.Minute
	}
	opts.Clock = clock.Or(opts.Clock)
	s := &Server{cfg: cfg, opts: opts, log: opts.Logger}
	s.live.Store(cfg)
	if err := s.bind(); err != nil {
		return nil, err
	}
	s.serveStarting()
	start := time.Now()
	s.log.Info("relay: opening the store; callbacks get 503 until it is open", "store", storeKind(cfg.Store),
		"listen", s.IngestAddr().String(), "admin", s.AdminAddr().String())
	st, err := openUnlessStopped(ctx, func() (store.Store, error) {
		return openStore(ctx, cfg.Store, opts.Logger, opts.Clock)
	})
	if err != nil {
		s.stopServing()
		return nil, err
	}
	s.opened = time.Since(start)
	if opts.WrapStore != nil {
		st = opts.WrapStore(st)
	}
	s.store = st
	if err := s.build(); err != nil {
		s.stopServing()
		st.Close()
		return nil, err
	}
	s.listen()
	return s, nil
}

// ErrStoppedOpening is New's error when ctx ended (SIGTERM) before the
// store was open.
var ErrStoppedOpening = errors.New("relay: stopped while opening the store")

// openUnlessStopped returns what open returns, or ErrStoppedOpening as
// soon as ctx ends: a relay told to stop while it reads a large relay.db
// must not first finish the read (the orchestrator's grace period is
// shorter). The abandoned open closes its store when it ends.
func openUnlessStopped(ctx context.Context, open func() (store.Store, error)) (store.Store, error) {
	type result struct {
		st  store.Store
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := open()
		done <- result{st, err}
	}()
	select {
	case r := <-done:
		return r.st, r.err
	case <-ctx.Done():
		go func() {
			if r := <-done; r.err == nil {
				r.st.Close()
			}
		}()
		return nil, fmt.Errorf("%w: %w", ErrStoppedOpening, ctx.Err())
	}
}

// swapHandler serves the handler last set.
type swapHandler struct{ h atomic.Pointer[http.Handler] }

func (s *swapHandler) set(h http.Handler) { s.h.Store(&h) }

func (s *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.h.Load()).ServeHTTP(w, r)
}

// serveStarting serves both listeners with the answers of a relay whose
// store is not open yet (see New).
func (s *Server) serveStarting() {
	s.ingestH.set(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		turnAway(w, "relay is starting; retry later")
	}))
	s.adminH.set(admin.Starting())
	s.ingestSrv = newHTTPServer(&s.ingestH, s.log)
	s.adminSrv = newHTTPServer(&s.adminH, s.log)
	s.served = make(chan error, 2)
	go func() { s.served <- serve(s.ingestSrv, s.ingestLn) }()
	go func() { s.served <- serve(s.adminSrv, s.adminLn) }()
}

// stopServing closes both servers and their listeners when New fails.
func (s *Server) stopServing() {
	s.ingestSrv.Close()
	s.adminSrv.Close()
	s.ingestLn.Close()
	s.adminLn.Close()
}

// OpenStore opens the backend that cfg selects.
func OpenStore(ctx context.Context, cfg config.Store, log *slog.Logger) (store.Store, error) {
	return openStore(ctx, cfg, log, clock.Real)
}

func openStore(ctx context.Context, cfg config.Store, log *slog.Logger, clk clock.Clock) (store.Store, error) {
	switch {
	case cfg.Redis != nil:
		st, err := redisstore.Open(ctx, redisstore.Options{
			URL:        cfg.Redis.URL,
			Prefix:     cfg.Redis.Prefix,
			Retention:  cfg.Redis.Retention.D(),
			Logger:     log,
			Cluster:    cfg.Redis.Cluster,
			Partitions: cfg.Redis.Partitions,
			Clock:      clk,
		})
		if err != nil {
			return nil, fmt.Errorf("relay: open redis store: %w", err)
		}
		return st, nil
	case cfg.Embedded != nil:
		st, err := bolt.Open(cfg.Embedded.Path, bolt.Options{Logger: log, Retention: cfg.Embedded.Retention.D(), Clock: clk})
		if err != nil {
			return nil, fmt.Errorf("relay: open embedded store %s: %w", cfg.Embedded.Path, err)
		}
		return st, nil
	}
	return nil, errors.New("relay: no store configured")
}

func (s *Server) build() error {
	s.metrics = admin.NewMetrics(admin.MetricsOptions{
		Depths: s.store, Destinations: s.destinationStates, Version: s.opts.Version, Logger: s.log,
	})
	s.metrics.KnowDestinations(destinationNames(s.cfg))
	s.tail = admin.NewTail(0)
	dm, err := deliver.NewManager(s.store, s.cfg.Destinations, deliver.Options{
		OnAttempt:    s.onAttempt,
		OnResult:     s.tailAttempt,
		Logger:       s.log,
		PollInterval: s.cfg.Delivery.PollInterval.D(),
		LeaseMargin:  s.cfg.Delivery.LeaseMargin.D(),
		Lease:        s.cfg.Delivery.Lease.D(),
		LogSample:    logSampler(s.cfg.Log.Sample),
		DrainTimeout: s.opts.ShutdownTimeout,
		Version:      s.opts.Version,
		Clock:        s.opts.Clock,
		// A receiver's redirect must not lead back into the relay.
		OwnAddrs: []net.Addr{s.ingestLn.Addr(), s.adminLn.Addr()},
		Yield:    s.ingestBackedUp,
		OnYield:  s.metrics.Yielded,
	})
	if err != nil {
		return fmt.Errorf("relay: delivery: %w", err)
	}
	s.deliver = dm
	// Agent destinations are settled by their pipelines in dm, with the
	// same hooks as direct ones.
	s.agents, err = agent.NewServer(s.store, dm, s.cfg, agent.ServerOptions{
		Logger:       s.log,
		Lease:        cmp.Or(s.opts.AgentLease, s.cfg.Delivery.Lease.D()),
		PollInterval: s.cfg.Delivery.PollInterval.D(),
		Clock:        s.opts.Clock,
		// Agents come in through the ingest listener's load balancer, if
		// any: the client behind it is who failed.
		Source: func(r *http.Request) string { return s.ingest.Client(r).String() },
	})
	if err != nil {
		return fmt.Errorf("relay: agents: %w", err)
	}
	table := route.New(s.cfg.Routes).WithLog(s.log)
	settings, err := ingestSettings(s.cfg, table)
	if err != nil {
		return err
	}
	s.ingest = ingest.NewHandler(s.store, settings, s.log)
	s.ingest.Now = s.opts.Clock.Now
	// Ingest calls this only with the destinations of a routed event, never
	// with none (which would wake every destination).
	s.ingest.OnAccepted = func(dests []string) { s.wake(dests...) }
	s.ingest.OnOutcome = s.metrics.Ingest
	s.ingest.OnEvent = s.tailEvent
	s.ingest.LogSample = logSampler(s.cfg.Log.Sample)
	s.router.Store(table)
	s.door = &door{}
	proxies, err := adminProxies(s.cfg)
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	s.adminProxies.Store(proxies)
	s.admin = admin.NewHandler(s.adminOptions())
	return nil
}

// ingestSettings derives ingest's settings from the config and its compiled
// routes, the same table parked replay routes with.
func ingestSettings(cfg *config.Config, table *route.Table) (ingest.Settings, error) {
	sec, err := ingest.CompileSecurity(cfg)
	if err != nil {
		return ingest.Settings{}, fmt.Errorf("relay: %w", err)
	}
	return ingest.Settings{
		Router:           table,
		MaxBodyBytes:     cfg.Ingest.MaxBodyBytes,
		ResponseStatus:   cfg.Ingest.ResponseStatus,
		RejectUnmatched:  cfg.Ingest.Unmatched == config.UnmatchedReject,
		DedupeFields:     cfg.Dedupe.Fields,
		DedupeTTL:        cfg.Dedupe.TTL.D(),
		WriteTimeout:     cfg.Store.WriteTimeout.D(),
		Auth:             sec.Auth,
		RouteAuth:        sec.RouteAuth,
		TrustedProxies:   sec.TrustedProxies,
		RateLimit:        cfg.Ingest.RateLimit,
		MaxConcurrent:    cfg.Ingest.MaxConcurrent,
		MaxInflightBytes: cfg.Ingest.MaxInflightBytes,
	}, nil
}

// bind opens both listeners, before build, which gives their addresses to
// delivery.
func (s *Server) bind() error {
	var err error
	if s.ingestLn, err = net.Listen("tcp", s.cfg.Listen); err != nil {
		return fmt.Errorf("relay: ingest listener: %w", err)
	}
	if s.adminLn, err = net.Listen("tcp", s.cfg.Admin.Listen); err != nil {
		s.ingestLn.Close()
		return fmt.Errorf("relay: admin listener: %w", err)
	}
	return nil
}

func (s *Server) listen() {
	// One router (README, Routing): ingest's routes behind the door, and
	// the agent protocol, since agents dial in on the ingest listener (the
	// one already reachable from outside). Closing the agent server ends
	// held polls at shutdown.
	r := mux.NewRouter().SkipClean(true)
	s.ingest.Mount(r, s.door.wrap)
	s.agents.Mount(r)
	s.ingestSrv.RegisterOnShutdown(s.agents.Close)
	s.adminSrv.RegisterOnShutdown(s.tail.Close)
	s.ingestH.set(cleanPaths(r))
	s.adminH.set(s.admin)
	s.warnOpenAdmin(s.cfg.Admin.Token)
}

// cleanPaths answers a request for an unclean path ("//hooks/1001",
// "/hooks/a/../1001") with a 307 to the clean one, as net/http's ServeMux
// does: gorilla/mux's own cleaning answers 301, which clients follow with a
// GET, so a provider's callback would end in a 405.
func cleanPaths(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.EscapedPath()
		clean := path.Clean("/" + p)
		if strings.HasSuffix(p, "/") && clean != "/" {
			clean += "/"
		}
		if clean != p && r.Method != http.MethodConnect {
			u := url.URL{Path: clean, RawQuery: r.URL.RawQuery}
			http.Redirect(w, r, u.String(), http.StatusTemporaryRedirect)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// warnOpenAdmin warns when the admin API takes requests from other hosts
// without a token.
func (s *Server) warnOpenAdmin(token string) {
	if token == "" && admin.Exposed(s.adminLn.Addr()) {
		s.log.Warn("relay: admin.token is empty and the admin listener is not loopback: anyone who reaches it can replay and delete deliveries; set admin.token",
			"admin", s.adminLn.Addr().String())
	}
}

func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		MaxHeaderBytes:    64 << 10, // not 1 MiB: headers are held whole while a slow sender trickles them
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// IngestAddr is the address the ingest listener is bound to.
func (s *Server) IngestAddr() net.Addr { return s.ingestLn.Addr() }

// AdminAddr is the address the admin listener is bound to.
func (s *Server) AdminAddr() net.Addr { return s.adminLn.Addr() }

// Run serves until ctx ends or a listener fails, then drains (see
// shutdown) and returns nil, or the listener's error.
func (s *Server) Run(ctx context.Context) error {
	s.log.Info("relay: serving", "listen", s.IngestAddr().String(), "admin", s.AdminAddr().String(),
		"store", storeKind(s.cfg.Store), "store_open", s.opened.Round(time.Millisecond),
		"routes", len(s.cfg.Routes), "destinations", len(s.cfg.Destinations))
	dctx, stopDeliver := context.WithCancel(context.WithoutCancel(ctx))
	delivered := make(chan error, 1)
	go func() { delivered <- s.deliver.Run(dctx) }()
	swept := make(chan struct{})
	go func() {
		defer close(swept)
		s.expireParkedLoop(dctx, s.opts.ParkedSweepInterval)
	}()
	stop := func() { stopDeliver(); <-swept }

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-s.served:
	}
	s.shutdown(stop, delivered)
	return runErr
}

func serve(srv *http.Server, ln net.Listener) error {
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("relay: serve %s: %w", ln.Addr(), err)
	}
	return nil
}

func storeKind(c config.Store) string {
	if c.Redis != nil {
		return "redis"
	}
	return "embedded"
}

// logSampler returns the decision of log.sample: nil (log every line) for
// 1 or unset, never for 0, else a random draw per line.
func logSampler(rate *float64) func() bool {
	switch {
	case rate == nil || *rate >= 1:
		return nil
	case *rate <= 0:
		return func() bool { return false }
	}
	r := *rate
	return func() bool { return rand.Float64() < r }
}

// ingestBackedUpAt is how many callbacks waiting for their store write
// mean that ingest is backed up and delivery should yield (deliver's
// Options.Yield): a few more than a store keeps in flight at a steady rate,
// so that only a queue building up makes delivery wait
// (docs/benchmarks.md, "Why the tuned constants are what they are").
const ingestBackedUpAt = 8

// ingestBackedUp reports whether ingest is backed up: the dispatchers then
// hold their next Lease for a moment, so the provider's answer, the latency
// that matters, gets the CPU and the store first.
func (s *Server) ingestBackedUp() bool {
	return s.ingest.Writing() >= ingestBackedUpAt
}
