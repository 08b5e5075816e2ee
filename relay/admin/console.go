package admin

import (
	"errors"
	"maps"
	"net/http"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/redact"
	"github.com/relaygw/relay/relay/state"
)

// Stats is the answer of GET /api/stats, what the console's overview
// polls: counters since the start (the console turns two readings into
// rates) and the queues. Ingest and Parked are for the admin token only.
type Stats struct {
	At time.Time `json:"at"`
	// Ingest counts callbacks by ingest outcome.
	Ingest map[string]float64 `json:"ingest,omitempty"`
	// Deliveries counts attempts by outcome: success, retry, dead.
	Deliveries   map[string]float64  `json:"deliveries"`
	Queued       int                 `json:"queued"`
	Dead         int                 `json:"dead"`
	Parked       *int                `json:"parked,omitempty"`
	Destinations []state.Destination `json:"destinations"`
}

// stats answers GET /api/stats, limited to a portal's destinations.
func (h *Handler) stats(w http.ResponseWriter, r *http.Request) {
	scope := scopeOf(r)
	dests, depths, err := h.destinationList(r.Context(), scope)
	if err != nil {
		h.storeError(w, "queue depths", err)
		return
	}
	st := Stats{At: time.Now().UTC(), Deliveries: map[string]float64{}, Destinations: dests}
	for _, d := range dests {
		st.Queued += d.Queued
		st.Dead += d.Dead
	}
	if m := h.opts.Metrics; m != nil {
		st.Deliveries = m.deliveryCounts(scope.Allows)
		if scope == nil {
			st.Ingest = m.ingestCounts()
		}
	}
	if scope == nil {
		st.Parked = &depths.Parked
	}
	writeJSON(w, http.StatusOK, st)
}

// ReloadResult is the outcome of the last config reload (SIGHUP or POST
// /api/reload), shown by GET /api/config.
type ReloadResult struct {
	At       time.Time     `json:"at"`
	OK       bool          `json:"ok"`
	Error    string        `json:"error,omitempty"`
	Problems []string      `json:"problems,omitempty"`
	Report   *ReloadReport `json:"report,omitempty"`
}

// NewReloadResult records a reload that ended at at with rep or err.
func NewReloadResult(at time.Time, rep ReloadReport, err error) *ReloadResult {
	if err == nil {
		return &ReloadResult{At: at.UTC(), OK: true, Report: &rep}
	}
	res := &ReloadResult{At: at.UTC(), Error: err.Error()}
	var problems config.Errors
	if errors.As(err, &problems) {
		res.Error = "config refused; the running config stays"
		for _, p := range problems {
			res.Problems = append(res.Problems, p.Error())
		}
	}
	return res
}

// ConfigView is the answer of GET /api/config: the running config as YAML
// with every secret masked, and the last reload's result.
type ConfigView struct {
	File       string        `json:"file,omitempty"`
	YAML       string        `json:"yaml"`
	LastReload *ReloadResult `json:"last_reload,omitempty"`
}

// Masked stands in for a secret in GET /api/config.
const Masked = "***"

// config answers GET /api/config (admin token only).
func (h *Handler) config(w http.ResponseWriter, _ *http.Request) {
	if h.opts.Config == nil {
		notConfigured(w, "config view")
		return
	}
	cfg := MaskConfig(h.opts.Config())
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(cfg); err != nil {
		writeError(w, http.StatusInternalServerError, "config view: "+err.Error())
		return
	}
	v := ConfigView{File: cfg.File, YAML: b.String()}
	if h.opts.LastReload != nil {
		v.LastReload = h.opts.LastReload()
	}
	writeJSON(w, http.StatusOK, v)
}

// MaskConfig returns a copy of c with every secret replaced by Masked:
// tokens, header values and signing secrets; URLs as redact shows them
// (user name, password and query values masked). c is not changed.
func MaskConfig(c *config.Config) config.Config {
	out := *c
	mask := func(s string) string {
		if s == "" {
			return ""
		}
		return Masked
	}
	out.Admin.Token = mask(c.Admin.Token)
	if r := c.Store.Redis; r != nil {
		rc := *r
		rc.URL = maskURL(r.URL)
		out.Store.Redis = &rc
	}
	out.Destinations = make([]config.Destination, len(c.Destinations))
	for i, d := range c.Destinations {
		d.URL = maskURL(d.URL)
		d.SigningSecret = mask(d.SigningSecret)
		d.Headers = maps.Clone(d.Headers)
		for k := range d.Headers {
			d.Headers[k] = Masked
		}
		out.Destinations[i] = d
	}
	out.Agents = make([]config.Agent, len(c.Agents))
	for i, a := range c.Agents {
		a.Token = mask(a.Token)
		out.Agents[i] = a
	}
	out.Portals = make([]config.Portal, len(c.Portals))
	for i, p := range c.Portals {
		p.Token = mask(p.Token)
		out.Portals[i] = p
	}
	return out
}

// maskURL hides a URL's user name, password and query values, where API
// keys tend to be, as every other message that quotes a URL does.
func maskURL(raw string) string { return redact.String(raw) }
