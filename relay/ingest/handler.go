package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/jsonenc"
	"github.com/relaygw/relay/relay/store"
)

// Acceptor is the part of the store that ingest needs.
type Acceptor interface {
	Accept(ctx context.Context, ev store.Event, dests []string, dd store.Dedupe) (store.AcceptResult, error)
}

// Router decides where an event goes. *route.Table implements it. in gives
// the body as a jq value for routes with a filter (Filters); it is called at
// most once, and only when a filter needs it.
type Router interface {
	MatchInput(ctx context.Context, webhookID string, fields map[string]string, in func() (any, error)) []string
	NeedsBody(webhookID string) bool
	Filters(webhookID string) bool
}

// Outcomes reported to Handler.OnOutcome, one per request; they are the label
// values of relay_ingest_requests_total.
const (
	OutcomeAccepted  = "accepted"
	OutcomeDuplicate = "duplicate"
	OutcomeParked    = "parked"
	OutcomeRejected  = "rejected"  // bad request: no webhook_id, unreadable body, wrong method
	OutcomeUnmatched = "unmatched" // no route under unmatched: reject
	OutcomeTooLarge  = "too_large"
	OutcomeError     = "error" // the store could not take the write
	// OutcomeUnauthorized is a callback that failed auth (401 or 403).
	OutcomeUnauthorized = "unauthorized"
	// OutcomeBusy is a callback refused at max_concurrent or
	// max_inflight_bytes (503).
	OutcomeBusy = "busy"
	// OutcomeRateLimited is a callback over its client's rate_limit (429).
	OutcomeRateLimited = "rate_limited"
)

// Settings are the ingest behaviours taken from config; they can be swapped
// at run time with Handler.Update.
type Settings struct {
	Router          Router
	MaxBodyBytes    int64
	ResponseStatus  int           // 200 or 202
	RejectUnmatched bool          // false: park unmatched events
	DedupeFields    []string      // empty: no dedupe
	DedupeTTL       time.Duration //
	// WriteTimeout bounds one store write; past it the provider gets a 503 and
	// retries. 0 means config.DefaultWriteTimeout.
	WriteTimeout time.Duration

	// Auth verifies callbacks whose webhook_id is not in RouteAuth; nil
	// verifies nothing.
	Auth      *Verifier
	RouteAuth map[string]*Verifier
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// RateLimit is callbacks a second per client IP; 0 means none.
	RateLimit float64
	// MaxConcurrent and MaxInflightBytes bound the callbacks in progress
	// and the body bytes they hold; 0 means the config default.
	MaxConcurrent    int
	MaxInflightBytes int64

	limiter *keyedLimiter // per client IP, when RateLimit > 0
}

// Handler serves POST /hooks/{webhook_id} and POST /hooks.
type Handler struct {
	router   *mux.Router // its routes alone, for ServeHTTP
	store    Acceptor
	log      *slog.Logger
	settings atomic.Pointer[Settings]
	budget   budget
	writing  atomic.Int64 // callbacks in h.store.Accept
	// refusals limits the log lines about refused callbacks to one a
	// second per source.
	refusals *keyedLimiter

	// Now is the clock for signature timestamps, rate limits and an
	// event's ReceivedAt.
	Now func() time.Time

	// OnAccepted, when set, is called with the destinations of every newly
	// accepted event after the write is durable.
	OnAccepted func(dests []string)
	// OnOutcome, when set, is called once per request with its outcome and
	// how long the answer took.
	OnOutcome func(outcome string, took time.Duration)
	// OnEvent, when set, is called with every stored or duplicate event
	// (ID set; Destinations where it was routed, none when parked) and its
	// outcome: accepted, parked or duplicate. It must not block.
	OnEvent func(ev store.Event, outcome string)
	// LogSample, when set, decides whether an accepted or duplicate
	// callback gets its info line (log.sample); nil logs every one.
	LogSample func() bool
}

// NewHandler returns a handler writing to st with the given settings.
func NewHandler(st Acceptor, s Settings, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{store: st, log: log, refusals: newKeyedLimiter(1, 1), Now: time.Now}
	h.Update(s)
	h.router = mux.NewRouter().SkipClean(true) // an unclean path is not found
	h.Mount(h.router, nil)
	return h
}

// webhookIDVar is the path variable of the route that names the webhook.
const webhookIDVar = "webhook_id"

// Mount adds ingest's routes to r: POST /hooks/{webhook_id} and POST
// /hooks, and r's answers to other paths (404) and methods (405), each as
// JSON. When wrap is set, every handler goes through it (the relay's
// shutdown door). The route with the id comes first: it is the one
// providers call.
func (h *Handler) Mount(r *mux.Router, wrap func(http.Handler) http.Handler) {
	if wrap == nil {
		wrap = func(next http.Handler) http.Handler { return next }
	}
	hook := wrap(http.HandlerFunc(h.serveHook))
	r.Handle("/hooks/{"+webhookIDVar+"}", hook).Methods(http.MethodPost)
	r.Handle("/hooks", hook).Methods(http.MethodPost)
	r.NotFoundHandler = wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, answer{Status: "error", Error: "not found: POST to /hooks/{webhook_id}"})
	}))
	r.MethodNotAllowedHandler = wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Allow", http.MethodPost)
		h.fail(w, http.StatusMethodNotAllowed, OutcomeRejected, time.Now(), "method not allowed: use POST")
	}))
}

// Update swaps the settings atomically (config reload); requests already
// running finish with the settings they started with.
func (h *Handler) Update(s Settings) {
	if s.WriteTimeout <= 0 {
		s.WriteTimeout = config.DefaultWriteTimeout
	}
	if s.MaxConcurrent <= 0 {
		s.MaxConcurrent = config.DefaultMaxConcurrent
	}
	if s.MaxInflightBytes <= 0 {
		s.MaxInflightBytes = config.DefaultMaxInflightBytes
	}
	s.limiter = nil
	if s.RateLimit > 0 {
		// A reload that keeps the rate keeps the buckets.
		if old := h.settings.Load(); old != nil && old.limiter != nil && old.RateLimit == s.RateLimit {
			s.limiter = old.limiter
		} else {
			s.limiter = newKeyedLimiter(s.RateLimit, rateBurst(s.RateLimit))
		}
	}
	h.settings.Store(&s)
}

// Client is the address r, a request to the ingest listener, comes from,
// as the running ingest.trusted_proxies decide it (see ClientIP). The
// agent server, on the same listener, counts failed authentications by it.
func (h *Handler) Client(r *http.Request) netip.Addr {
	return ClientIP(r.RemoteAddr, r.Header.Values("X-Forwarded-For"), h.settings.Load().TrustedProxies)
}

// storeRetryAfter is the Retry-After of a 503 for a write the store refused or
// did not take within the write timeout, in seconds: long enough not to
// hammer a store that is down, short enough for a blip.
const storeRetryAfter = "5"

// ServeHTTP implements http.Handler with ingest's routes alone (see
// Mount); the relay mounts them on its listener's one router instead.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.router.ServeHTTP(w, r)
}

// answer is the JSON body of every ingest response.
type answer struct {
	Status     string `json:"status"`
	EventID    string `json:"event_id,omitempty"`
	Deliveries *int   `json:"deliveries,omitempty"`
	Parked     bool   `json:"parked,omitempty"`
	Error      string `json:"error,omitempty"`
}

// rateBurst is the burst a rate limit allows: a second's worth, at least 1,
// so a provider's small bursts pass while a flood is cut to the rate.
func rateBurst(perSec float64) int {
	return max(1, int(perSec))
}

// Writing is how many callbacks are being written to the store: read,
// checked and routed, waiting only for the durable write and their answer.
func (h *Handler) Writing() int { return int(h.writing.Load()) }

// serveHook takes a callback through, in order: the concurrency cap, the
// client's rate limit, the body read (its bytes reserved as they come),
// auth, and only then routing and the store. Nothing before auth writes
// anything.
func (h *Handler) serveHook(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	pathID := mux.Vars(r)[webhookIDVar] // "" on POST /hooks
	s := h.settings.Load()
	if !h.budget.enter(s.MaxConcurrent) {
		h.busy(w, start)
		return
	}
	defer h.budget.leave()
	client := ClientIP(r.RemoteAddr, r.Header.Values("X-Forwarded-For"), s.TrustedProxies)
	if s.limiter != nil && !s.limiter.allow(client.String(), h.Now()) {
		w.Header().Set("Retry-After", retryAfter(s.RateLimit))
		h.fail(w, http.StatusTooManyRequests, OutcomeRateLimited, start, "rate limit exceeded, retry later")
		return
	}
	body, held, err := readBody(w, r, s.MaxBodyBytes, s.MaxInflightBytes, &h.budget)
	defer h.budget.release(held)
	if err != nil {
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			h.fail(w, http.StatusRequestEntityTooLarge, OutcomeTooLarge, start, "body larger than max_body_bytes")
		case errors.Is(err, errBusy):
			h.busy(w, start)
		default:
			h.fail(w, http.StatusBadRequest, OutcomeRejected, start, "reading body: "+err.Error())
		}
		return
	}
	p, status, msg := parse(r, pathID, body, s)
	if refused := s.verifier(p.webhookID).Check(r, client, body, h.Now()); refused != refuseNone {
		h.unauthorized(w, refused, client, p.webhookID, start)
		return
	}
	stripToken(r)
	if status != 0 {
		h.fail(w, status, OutcomeRejected, start, msg)
		return
	}
	var in func() (any, error) // made only for filters: the plain path allocates no closure
	if s.Router.Filters(p.webhookID) {
		in = func() (any, error) { return Value(p.kind, body) }
	}
	// Not the request's context: routing must not depend on the provider
	// staying connected (filters have their own time limit).
	dests := s.Router.MatchInput(context.Background(), p.webhookID, p.fields, in)
	if len(dests) == 0 && s.RejectUnmatched {
		h.fail(w, http.StatusNotFound, OutcomeUnmatched, start, "no route for webhook_id "+p.webhookID)
		return
	}
	h.accept(w, r, s, p, body, dests, start)
}

func (h *Handler) accept(w http.ResponseWriter, r *http.Request, s *Settings, p parsed, body []byte, dests []string, start time.Time) {
	ev := store.Event{
		WebhookID:   p.webhookID,
		DedupeKey:   dedupeValue(p.fields, s.DedupeFields),
		ContentType: r.Header.Get("Content-Type"),
		Body:        body,
		ReceivedAt:  h.Now().UTC(),
	}
	var dd store.Dedupe
	if ev.DedupeKey != "" {
		dd = store.Dedupe{Key: ClaimKey(p.webhookID, ev.DedupeKey), TTL: s.DedupeTTL}
	}
	// The write must not be cut short by the provider hanging up: it has
	// either happened durably or not at all, and the provider retries anyway.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.WriteTimeout)
	defer cancel()
	h.writing.Add(1)
	res, err := h.store.Accept(ctx, ev, dests, dd)
	h.writing.Add(-1)
	if err != nil {
		h.log.Error("ingest: store refused event", "webhook_id", p.webhookID, "err", err)
		w.Header().Set("Retry-After", storeRetryAfter)
		h.fail(w, http.StatusServiceUnavailable, OutcomeError, start, "store unavailable, retry later")
		return
	}
	n := res.Deliveries
	if h.OnEvent != nil {
		ev.ID, ev.Body = res.EventID, nil
		switch {
		case res.Duplicate:
			h.OnEvent(ev, OutcomeDuplicate)
		case len(dests) == 0:
			ev.Parked = true
			h.OnEvent(ev, OutcomeParked)
		default:
			ev.Destinations = dests
			h.OnEvent(ev, OutcomeAccepted)
		}
	}
	switch {
	case res.Duplicate:
		h.logAccepted("ingest: duplicate, not delivered again", res.EventID, p.webhookID, ev.DedupeKey, 0, start)
		h.done(OutcomeDuplicate, start)
		writeJSON(w, s.ResponseStatus, answer{Status: "duplicate", EventID: res.EventID, Deliveries: &n})
		return
	case len(dests) == 0:
		h.log.Info("ingest: parked unmatched event", "event_id", res.EventID, "webhook_id", p.webhookID,
			"mid", ev.DedupeKey, "took", time.Since(start))
		h.done(OutcomeParked, start)
		writeJSON(w, s.ResponseStatus, answer{Status: "accepted", EventID: res.EventID, Deliveries: &n, Parked: true})
		return
	}
	if h.OnAccepted != nil {
		h.OnAccepted(dests)
	}
	h.logAccepted("ingest: accepted", res.EventID, p.webhookID, ev.DedupeKey, n, start)
	h.done(OutcomeAccepted, start)
	writeJSON(w, s.ResponseStatus, answer{Status: "accepted", EventID: res.EventID, Deliveries: &n})
}

// logAccepted writes a callback's info line, ids only (never its body).
func (h *Handler) logAccepted(msg, eventID, webhookID, mid string, deliveries int, start time.Time) {
	if !h.log.Enabled(context.Background(), slog.LevelInfo) || (h.LogSample != nil && !h.LogSample()) {
		return
	}
	h.log.Info(msg, "event_id", eventID, "webhook_id", webhookID, "mid", mid, "deliveries", deliveries, "took", time.Since(start))
}

// parsed is what routing and dedupe read from a request.
type parsed struct {
	webhookID string
	fields    Fields
	kind      BodyKind
}

// parse finds the webhook_id and the body fields. A non-zero status means the
// request must be refused with msg.
func parse(r *http.Request, pathID string, body []byte, s *Settings) (parsed, int, string) {
	p := parsed{webhookID: pathID}
	if p.webhookID == "" {
		p.webhookID = r.URL.Query().Get("webhook_id")
	}
	kind := Kind(r.Header.Get("Content-Type"), body)
	p.kind = kind
	var perr error
	if p.webhookID != "" && !s.Router.NeedsBody(p.webhookID) {
		// Routing ignores the body: only the dedupe fields are read from it.
		p.fields, perr = extractOnly(kind, body, s.DedupeFields)
	} else {
		p.fields, perr = Extract(kind, body)
	}
	if p.webhookID == "" {
		p.webhookID = strings.TrimSpace(p.fields["webhook_id"])
	}
	switch {
	case p.webhookID == "" && perr != nil:
		return p, http.StatusBadRequest, "no webhook_id in path or query, and the body is unreadable: " + perr.Error()
	case p.webhookID == "":
		return p, http.StatusBadRequest, "no webhook_id in path, query or body"
	case !s.Router.NeedsBody(p.webhookID):
		return p, 0, ""
	case kind == KindOther:
		return p, http.StatusUnsupportedMediaType, "routes for webhook_id " + p.webhookID + " match body fields; send JSON or a form body"
	case perr != nil:
		return p, http.StatusBadRequest, "routes for webhook_id " + p.webhookID + " match body fields, but the body is unreadable: " + perr.Error()
	}
	return p, 0, ""
}

// dedupeValue is the value of the dedupe fields: the value itself for one
// field, a JSON array of the values for several, so that no two tuples
// share a text (("abc:1","2") and ("abc","1:2") stay apart). It is ""
// (no dedupe) unless every field is present and non-empty, so events
// without them are never dropped.
func dedupeValue(f Fields, names []string) string {
	if len(names) == 0 {
		return ""
	}
	for _, n := range names {
		if v := f[n]; v == "" || v == "null" {
			return ""
		}
	}
	if len(names) == 1 {
		return f[names[0]]
	}
	b := []byte{'['}
	for i, n := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonenc.AppendString(b, f[n])
	}
	return string(append(b, ']'))
}

// maxClaimKey is the longest claim key kept as it is; longer ones are
// hashed, so a key of any length fits every store's key size.
const maxClaimKey = 200

// ClaimKey is the store's dedupe claim for value under webhookID: the two
// joined by a unit separator, or "sha256:" and the hex SHA-256 of that
// when it is longer than maxClaimKey bytes. The readable value stays the
// event's DedupeKey (the Idempotency-Key receivers see).
func ClaimKey(webhookID, value string) string {
	key := webhookID + "\x1f" + value
	if len(key) <= maxClaimKey {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// verifier is the auth for webhookID: its routes' when they set one, else
// ingest.auth.
func (s *Settings) verifier(webhookID string) *Verifier {
	if v, ok := s.RouteAuth[webhookID]; ok {
		return v
	}
	return s.Auth
}

// unauthorizedBody is all a refused sender learns.
const unauthorizedBody = `{"error":"unauthorized"}` + "\n"

// unauthorized answers a callback that failed auth with status (401, or
// 403 for allow_ips), and logs it at most once a second per source.
func (h *Handler) unauthorized(w http.ResponseWriter, status int, client netip.Addr, webhookID string, start time.Time) {
	h.done(OutcomeUnauthorized, start)
	if h.refusals.allow(client.String(), h.Now()) {
		h.log.Warn("ingest: callback refused by auth", "client", client.String(), "webhook_id", webhookID, "status", status)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(unauthorizedBody))
}

// busy answers 503 at max_concurrent or max_inflight_bytes.
func (h *Handler) busy(w http.ResponseWriter, start time.Time) {
	w.Header().Set("Retry-After", "1")
	h.fail(w, http.StatusServiceUnavailable, OutcomeBusy, start, "busy, retry later")
}

func (h *Handler) fail(w http.ResponseWriter, status int, outcome string, start time.Time, msg string) {
	h.done(outcome, start)
	writeJSON(w, status, answer{Status: "error", Error: msg})
}

func (h *Handler) done(outcome string, start time.Time) {
	if h.OnOutcome != nil {
		h.OnOutcome(outcome, time.Since(start))
	}
}

func writeJSON(w http.ResponseWriter, status int, a answer) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	var buf [160]byte
	_, _ = w.Write(appendAnswer(buf[:0], a))
}

// appendAnswer encodes a as json.NewEncoder(w).Encode(a) does, newline
// included, without its per-call allocations: every callback gets one.
func appendAnswer(b []byte, a answer) []byte {
	b = append(b, `{"status":`...)
	b = jsonenc.AppendString(b, a.Status)
	if a.EventID != "" {
		b = append(b, `,"event_id":`...)
		b = jsonenc.AppendString(b, a.EventID)
	}
	if a.Deliveries != nil {
		b = append(b, `,"deliveries":`...)
		b = strconv.AppendInt(b, int64(*a.Deliveries), 10)
	}
	if a.Parked {
		b = append(b, `,"parked":true`...)
	}
	if a.Error != "" {
		b = append(b, `,"error":`...)
		b = jsonenc.AppendString(b, a.Error)
	}
	return append(b, "}\n"...)
}
