package admin

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"slices"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/relay/state"
	"github.com/relaygw/relay/relay/store"
)

// destinations answers GET /api/destinations: every configured destination
// with its queue depth, dead count, in-flight attempts, breaker state and
// last success and failure, then any removed destination that still has
// deliveries queued or dead-lettered (configured: false). A portal sees its
// own destinations only.
func (h *Handler) destinations(w http.ResponseWriter, r *http.Request) {
	out, _, err := h.destinationList(r.Context(), scopeOf(r))
	if err != nil {
		h.storeError(w, "queue depths", err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// destinationList is the list GET /api/destinations answers, for scope,
// with the store's depths it was built from.
func (h *Handler) destinationList(ctx context.Context, scope *Scope) ([]state.Destination, store.Depths, error) {
	var states []state.Destination
	if h.opts.Destinations != nil {
		states = h.opts.Destinations()
	}
	depths, err := h.opts.Store.Depths(ctx)
	if err != nil {
		return nil, depths, err
	}
	out := make([]state.Destination, 0, len(states))
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
		out = append(out, state.Destination{Name: name, Queued: depths.Queued[name], Dead: depths.Dead[name]})
	}
	out = slices.DeleteFunc(out, func(s state.Destination) bool { return !scope.Allows(s.Name) })
	return out, depths, nil
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
