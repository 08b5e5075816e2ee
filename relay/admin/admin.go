package admin

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/authguard"
	"github.com/relaygw/relay/relay/store"
)

// Store is the part of store.Store that the admin API reads and changes.
type Store interface {
	Ping(ctx context.Context) error
	Event(ctx context.Context, id string) (store.EventRecord, error)
	FindEvents(ctx context.Context, q store.EventQuery, p store.Page) ([]store.EventRecord, string, error)
	ListDLQ(ctx context.Context, dest string, p store.Page) ([]store.Delivery, string, error)
	ReplayDLQ(ctx context.Context, id string) error
	DeleteDLQ(ctx context.Context, id string) error
	ListParked(ctx context.Context, p store.Page) ([]store.Event, string, error)
	ReplayParked(ctx context.Context, id string, dests []string) (int, error)
	Depths(ctx context.Context) (store.Depths, error)
}

var _ Store = store.Store(nil)

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
	// Destinations reports every configured destination's live state.
	Destinations func() []DestinationState
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
}

// Handler serves the admin listener: probes, metrics and the /api routes.
type Handler struct {
	opts   Options
	log    *slog.Logger
	token  atomic.Pointer[authguard.Digest] // nil: no auth
	router *mux.Router
}

// NewHandler returns the admin handler. GET /healthz answers 200 while the
// process runs; GET /readyz 200 when the store answers a ping within two
// seconds and the relay is not draining, else 503.
func NewHandler(o Options) *Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Throttle == nil {
		o.Throttle = authguard.NewThrottle(authguard.Options{Burst: config.DefaultAuthFailureBurst,
			Every: config.DefaultAuthFailureEvery, MaxSources: config.DefaultAuthFailureSources})
	}
	h := &Handler{opts: o, log: o.Logger}
	h.SetToken(o.Token)
	r := mux.NewRouter()
	r.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/readyz", h.ready).Methods(http.MethodGet, http.MethodHead)
	if o.Metrics != nil {
		r.Handle("/metrics", o.Metrics.Handler()).Methods(http.MethodGet, http.MethodHead)
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
	if token == "" {
		h.token.Store(nil)
		return
	}
	d := authguard.NewDigest(token)
	h.token.Store(&d)
}

func (h *Handler) ready(w http.ResponseWriter, r *http.Request) {
	if h.opts.Draining != nil && h.opts.Draining() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining", "error": "relay is shutting down"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := h.opts.Store.Ping(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": "store does not answer"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (h *Handler) api(r *mux.Router) {
	for _, rt := range []struct {
		method, path string
		fn           http.HandlerFunc
	}{
		{http.MethodGet, "/api/events", h.findEvents},
		{http.MethodGet, "/api/events/{id}", h.getEvent},
		{http.MethodGet, "/api/dlq", h.listDLQ},
		{http.MethodPost, "/api/dlq/replay", h.replayDLQAll},
		{http.MethodPost, "/api/dlq/{id}/replay", h.replayDLQ},
		{http.MethodDelete, "/api/dlq/{id}", h.deleteDLQ},
		{http.MethodGet, "/api/parked", h.listParked},
		{http.MethodPost, "/api/parked/replay", h.replayParkedAll},
		{http.MethodPost, "/api/parked/{id}/replay", h.replayParked},
		{http.MethodGet, "/api/destinations", h.destinations},
		{http.MethodPost, "/api/reload", h.reload},
	} {
		r.Handle(rt.path, h.auth(rt.fn)).Methods(rt.method)
	}
}

// authAPI applies auth to /api paths only.
func (h *Handler) authAPI(next http.Handler) http.Handler {
	authed := h.auth(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/") {
			authed.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// auth requires the bearer token on every /api route when one is set. The
// token is compared as SHA-256 digests in constant time, so neither its
// bytes nor its length leak through timing. A source that failed too often
// is answered 429 without its token being looked at.
func (h *Handler) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		want := h.token.Load()
		if want == nil {
			next.ServeHTTP(w, r)
			return
		}
		if wait := h.opts.Throttle.Wait(r.RemoteAddr); wait > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(authguard.RetryAfter(wait)))
			writeError(w, http.StatusTooManyRequests, "too many failed authentications from this address; try again later")
			return
		}
		got, ok := authguard.BearerToken(r.Header.Get("Authorization"))
		if !ok || !want.Equal(got) {
			h.opts.Throttle.Fail(r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="relay admin"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token: send Authorization: Bearer <admin.token>")
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
