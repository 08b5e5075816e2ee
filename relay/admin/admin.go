package admin

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/authguard"
	"github.com/relaygw/relay/relay/state"
	"github.com/relaygw/relay/relay/store"
)

// Store is the part of store.Store that the admin API reads and changes.
type Store interface {
	Ping(ctx context.Context) error
	Event(ctx context.Context, id string) (store.EventRecord, error)
	Delivery(ctx context.Context, id string) (store.Delivery, error)
	FindEvents(ctx context.Context, q store.EventQuery, p store.Page) ([]store.EventRecord, string, error)
	ListDLQ(ctx context.Context, dest string, p store.Page) ([]store.Delivery, string, error)
	ReplayDLQ(ctx context.Context, id string) error
	DeleteDLQ(ctx context.Context, id string) error
	ListParked(ctx context.Context, p store.Page) ([]store.Event, string, error)
	ReplayParked(ctx context.Context, id string, dests []string) (int, error)
	Depths(ctx context.Context) (store.Depths, error)
}

var _ Store = store.Store(nil)

// writeChecker is implemented by a store that knows whether it can write
// (both backends): a store that answers pings but refuses writes is not
// ready.
type writeChecker interface {
	CheckWrite(ctx context.Context) error
	WriteErrors() int64
}

// readyTimeout bounds /readyz, so a frozen store makes it answer 503 soon
// rather than hold the prober until its own timeout.
const readyTimeout = time.Second

// Options are the admin handler's dependencies. Only Store is required; a
// route whose hook is nil answers 501.
type Options struct {
	Store Store
	// Token is the bearer token /api/* requires; empty means no auth.
	Token  string
	Logger *slog.Logger
	// Metrics, when set, is served on GET /metrics.
	Metrics *Metrics
	// Route returns where the running config sends ev (parked replay).
	Route func(ev store.Event) []string
	// Wake tells the workers of dests, or of every destination when none is
	// named, that deliveries are due now (after replays).
	Wake func(dests ...string)
	// Replayed tells the workers of dests, or of every destination when
	// none is named, that an operator replayed their dead letters: an open
	// circuit sends the first at once as its probe. Wake is used when nil.
	Replayed func(dests ...string)
	// Destinations reports every configured destination's live state.
	Destinations func() []state.Destination
	// Reload re-reads the config file and applies it.
	Reload func(ctx context.Context) (ReloadReport, error)
	// Draining reports whether the relay is shutting down; /readyz then
	// answers 503 so load balancers stop sending.
	Draining func() bool
	// Sent, when set, returns what destination dest is sent for ev under
	// the running config; ok is false when dest has no transform.
	Sent func(ctx context.Context, ev store.Event, dest string) (s Sent, ok bool)
	// Throttle counts failed authentications per source address; default
	// one with config's DefaultAuthFailure* settings.
	Throttle *authguard.Throttle
	// Source returns the address a request's failed authentications count
	// against (the client behind a trusted proxy, admin.trusted_proxies);
	// default the TCP peer.
	Source func(r *http.Request) string
	// Portals are the client portals: tokens scoped to destinations.
	Portals []Portal
	// Tail, when set, feeds GET /api/tail.
	Tail *Tail
	// Config returns the running config (masked before it is served) and
	// LastReload the result of the last reload, for GET /api/config.
	Config     func() *config.Config
	LastReload func() *ReloadResult
	// Console, when set, is served under /ui/ (the web console's assets).
	Console http.Handler
	// Pprof serves net/http/pprof under /debug/pprof/, to the admin token
	// only (admin.pprof).
	Pprof bool
	// MetricsAuth serves /metrics to the admin token only
	// (admin.metrics_auth); without it /metrics needs no token.
	MetricsAuth bool
}

// Handler serves the admin listener: probes, metrics and the /api routes.
type Handler struct {
	opts    Options
	log     *slog.Logger
	token   atomic.Pointer[authguard.Digest] // nil: no auth
	portals atomic.Pointer[[]portalKey]
	// authChanged is closed, and replaced, when the token or the portals
	// change, so that open tail streams end and their clients
	// authenticate again.
	authMu      sync.Mutex
	authChanged chan struct{}
	router      *mux.Router
}

// NewHandler returns the admin handler. GET /healthz answers 200 while the
// process runs; GET /readyz 200 when the store answers a ping and can
// write (see store.WriteChecker) within readyTimeout and the relay is not
// draining, else 503.
func NewHandler(o Options) *Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Throttle == nil {
		o.Throttle = authguard.NewThrottle(authguard.Options{Burst: config.DefaultAuthFailureBurst,
			Every: config.DefaultAuthFailureEvery, MaxSources: config.DefaultAuthFailureSources})
	}
	if o.Source == nil {
		o.Source = func(r *http.Request) string { return r.RemoteAddr }
	}
	h := &Handler{opts: o, log: o.Logger}
	h.SetToken(o.Token)
	h.SetPortals(o.Portals)
	r := mux.NewRouter()
	r.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/readyz", h.ready).Methods(http.MethodGet, http.MethodHead)
	if o.Metrics != nil {
		metrics := o.Metrics.Handler()
		if o.MetricsAuth {
			metrics = h.auth(metrics, false)
		} else {
			metrics = h.refusePortal(metrics)
		}
		r.Handle("/metrics", metrics).Methods(http.MethodGet, http.MethodHead)
	}
	if o.Console != nil {
		r.Handle("/ui", http.RedirectHandler("/ui/", http.StatusMovedPermanently))
		r.PathPrefix("/ui/").Handler(http.StripPrefix("/ui", o.Console)).Methods(http.MethodGet, http.MethodHead)
	}
	if o.Pprof {
		h.pprof(r)
	}
	h.api(r)
	// Unknown /api paths need the token too, so the routes cannot be
	// probed without it.
	r.NotFoundHandler = h.authAPI(http.HandlerFunc(notFound))
	r.MethodNotAllowedHandler = h.authAPI(http.HandlerFunc(methodNotAllowed))
	h.router = r
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.router.ServeHTTP(w, r) }

// SetToken replaces the bearer token (config reload); "" turns auth off.
func (h *Handler) SetToken(token string) {
	var next *authguard.Digest
	if token != "" {
		d := authguard.NewDigest(token)
		next = &d
	}
	prev := h.token.Swap(next)
	if (prev == nil) != (next == nil) || (prev != nil && *prev != *next) {
		h.authChange()
	}
}

// authChange signals that who may see what has changed.
func (h *Handler) authChange() {
	h.authMu.Lock()
	defer h.authMu.Unlock()
	if h.authChanged != nil {
		close(h.authChanged)
	}
	h.authChanged = make(chan struct{})
}

// authChanges returns a channel closed at the next auth change.
func (h *Handler) authChanges() <-chan struct{} {
	h.authMu.Lock()
	defer h.authMu.Unlock()
	return h.authChanged
}

func (h *Handler) ready(w http.ResponseWriter, r *http.Request) {
	if h.opts.Draining != nil && h.opts.Draining() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining", "error": "relay is shutting down"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	if err := h.opts.Store.Ping(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": "store does not answer"})
		return
	}
	if wc, ok := h.opts.Store.(writeChecker); ok {
		if err := wc.CheckWrite(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": "store refuses writes"})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (h *Handler) api(r *mux.Router) {
	// portal marks the routes a portal token may call; their handlers
	// filter by the request's scope. Every other route answers it 403.
	for _, rt := range []struct {
		method, path string
		fn           http.HandlerFunc
		portal       bool
	}{
		{http.MethodGet, "/api/whoami", h.whoami, true},
		{http.MethodGet, "/api/events", h.findEvents, true},
		{http.MethodGet, "/api/events/{id}", h.getEvent, true},
		{http.MethodGet, "/api/dlq", h.listDLQ, true},
		{http.MethodPost, "/api/dlq/replay", h.replayDLQAll, true},
		{http.MethodPost, "/api/dlq/{id}/replay", h.replayDLQ, true},
		{http.MethodDelete, "/api/dlq/{id}", h.deleteDLQ, false},
		{http.MethodGet, "/api/parked", h.listParked, false},
		{http.MethodPost, "/api/parked/replay", h.replayParkedAll, false},
		{http.MethodPost, "/api/parked/{id}/replay", h.replayParked, false},
		{http.MethodGet, "/api/destinations", h.destinations, true},
		{http.MethodGet, "/api/stats", h.stats, true},
		{http.MethodGet, "/api/tail", h.tail, true},
		{http.MethodGet, "/api/config", h.config, false},
		{http.MethodPost, "/api/reload", h.reload, false},
	} {
		r.Handle(rt.path, h.auth(rt.fn, rt.portal)).Methods(rt.method)
	}
}

// refusePortal answers 403 to a request that carries a portal token, on
// routes outside /api that need no token (metrics): a portal holder gets
// no more there than anyone else. A bearer token sent there is checked
// like one sent to /api, throttle included: were a wrong one answered 200
// and a portal's 403, the route would test portal tokens for anyone.
func (h *Handler) refusePortal(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, bearer := authguard.BearerToken(r.Header.Get("Authorization")); !bearer {
			next.ServeHTTP(w, r)
			return
		}
		h.auth(next, false).ServeHTTP(w, r)
	})
}

// pprof serves the runtime's profiles, as net/http/pprof does on
// http.DefaultServeMux, but on this router and behind the admin token: a
// portal token gets 403.
func (h *Handler) pprof(r *mux.Router) {
	for path, fn := range map[string]http.HandlerFunc{
		"/debug/pprof/cmdline": pprof.Cmdline,
		"/debug/pprof/profile": pprof.Profile,
		"/debug/pprof/symbol":  pprof.Symbol,
		"/debug/pprof/trace":   pprof.Trace,
	} {
		r.Handle(path, h.auth(fn, false))
	}
	// Index serves the list and every named profile (heap, goroutine...).
	r.PathPrefix("/debug/pprof/").Handler(h.auth(http.HandlerFunc(pprof.Index), false))
}

// authAPI applies auth to /api paths only.
func (h *Handler) authAPI(next http.Handler) http.Handler {
	authed := h.auth(next, false)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/") {
			authed.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Exposed reports whether addr is reachable from other hosts: anything but
// a loopback IP. The config refuses such a listener without a token; the
// relay still warns at start should one get through (a config built by
// hand).
func Exposed(addr net.Addr) bool {
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return true
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

// apiError is the body of every error answer.
type apiError struct {
	Error    string   `json:"error"`
	Problems []string `json:"problems,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, apiError{Error: msg})
}

// storeError answers a failed store call: 404 for a missing record, 400 for
// a bad cursor, 503 while the store is unavailable, else 500.
func (h *Handler) storeError(w http.ResponseWriter, what string, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, what+": not found")
	case errors.Is(err, store.ErrBadCursor):
		writeError(w, http.StatusBadRequest, what+": bad cursor; pass the X-Next-Cursor of a previous page")
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, store.ErrClosed),
		errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, what+": store unavailable, try again")
	default:
		h.log.Error("admin: store call failed", "what", what, "err", err)
		writeError(w, http.StatusInternalServerError, what+": "+err.Error())
	}
}

func notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, "no route "+r.Method+" "+r.URL.Path)
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed on "+r.URL.Path)
}

func notConfigured(w http.ResponseWriter, what string) {
	writeError(w, http.StatusNotImplemented, what+" is not available in this relay")
}

// Starting returns the admin listener's handler while the relay opens its
// store: /healthz answers 200 (the process runs; a liveness probe must not
// restart a relay that is reading a large store) with status "starting",
// and every other path 503 with Retry-After, /readyz included, so that
// nothing is served before the store and the token check are there.
func Starting() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			writeJSON(w, http.StatusOK, map[string]string{"status": "starting"})
			return
		}
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "starting", "error": "relay is starting: the store is opening; retry later"})
	})
}
