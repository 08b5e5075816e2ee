package admin

import (
	"errors"
	"io/fs"
	"net/http"
	"slices"

	"github.com/relaygw/relay/config"
)

// destinations answers GET /api/destinations: every configured destination
// with its queue depth, dead count, in-flight attempts, breaker state and
// last success and failure, then any removed destination that still has
// deliveries queued or dead-lettered (configured: false).
func (h *Handler) destinations(w http.ResponseWriter, r *http.Request) {
	var states []DestinationState
	if h.opts.Destinations != nil {
		states = h.opts.Destinations()
	}
	depths, err := h.opts.Store.Depths(r.Context())
	if err != nil {
		h.storeError(w, "queue depths", err)
		return
	}
	out := make([]DestinationState, 0, len(states))
	seen := map[string]bool{}
	for _, s := range states {
		s.Configured = true
		s.Queued, s.Dead = depths.Queued[s.Name], depths.Dead[s.Name]
		seen[s.Name] = true
		out = append(out, s)
	}
	var gone []string
	for name, n := range depths.Queued {
		if !seen[name] && n > 0 {
			gone = append(gone, name)
			seen[name] = true
		}
	}
	for name, n := range depths.Dead {
		if !seen[name] && n > 0 {
			gone = append(gone, name)
			seen[name] = true
		}
	}
	slices.Sort(gone)
	for _, name := range gone {
		out = append(out, DestinationState{Name: name, Queued: depths.Queued[name], Dead: depths.Dead[name]})
	}
	writeJSON(w, http.StatusOK, out)
}

// reload answers POST /api/reload, which does what SIGHUP does. A bad file
// answers 400 with every problem as FILE:LINE: message; the running config
// stays.
func (h *Handler) reload(w http.ResponseWriter, r *http.Request) {
	if h.opts.Reload == nil {
		notConfigured(w, "reload")
		return
	}
	rep, err := h.opts.Reload(r.Context())
	if err == nil {
		writeJSON(w, http.StatusOK, rep)
		return
	}
	var problems config.Errors
	switch {
	case errors.As(err, &problems):
		lines := make([]string, len(problems))
		for i, p := range problems {
			lines[i] = p.Error()
		}
		writeJSON(w, http.StatusBadRequest, apiError{Error: "config refused; the running config stays", Problems: lines})
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission):
		writeJSON(w, http.StatusBadRequest, apiError{Error: "config refused; the running config stays: " + err.Error()})
	default:
		writeJSON(w, http.StatusInternalServerError, apiError{Error: "reload failed; the running config stays: " + err.Error()})
	}
}
