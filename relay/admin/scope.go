package admin

import (
	"context"
	"crypto/subtle"
	"net/http"
	"slices"
	"strconv"

	"github.com/relaygw/relay/internal/authguard"
)

// Portal is one client's view: a holder of Token may read and replay the
// deliveries of Destinations only.
type Portal struct {
	Name         string
	Token        string
	Destinations []string
}

// portalKey is a portal as the auth check holds it: the token's digest.
type portalKey struct {
	sum   authguard.Digest
	scope *Scope
}

// Scope is what a request may see. A nil *Scope is the admin token (or no
// auth): everything.
type Scope struct {
	Portal       string   `json:"portal,omitempty"`
	Destinations []string `json:"destinations"`
}

// Allows reports whether the scope covers dest.
func (s *Scope) Allows(dest string) bool {
	return s == nil || slices.Contains(s.Destinations, dest)
}

type scopeKey struct{}

// scopeOf returns the request's scope, which auth put in its context.
func scopeOf(r *http.Request) *Scope {
	s, _ := r.Context().Value(scopeKey{}).(*Scope)
	return s
}

// SetPortals replaces the portals (config reload).
func (h *Handler) SetPortals(ps []Portal) {
	keys := make([]portalKey, 0, len(ps))
	for _, p := range ps {
		keys = append(keys, portalKey{
			sum:   authguard.NewDigest(p.Token),
			scope: &Scope{Portal: p.Name, Destinations: slices.Clone(p.Destinations)},
		})
	}
	prev := h.portals.Swap(&keys)
	if prev == nil || !slices.EqualFunc(*prev, keys, func(a, b portalKey) bool {
		return a.sum == b.sum && a.scope.Portal == b.scope.Portal && slices.Equal(a.scope.Destinations, b.scope.Destinations)
	}) {
		h.authChange()
	}
}

// identify maps the request's bearer token to a scope: nil for the admin
// token, a portal's scope for its token. ok is false for no token or a
// wrong one while a token is required. Every digest is compared, in
// constant time, so timing tells nothing about which token nearly matched.
func (h *Handler) identify(r *http.Request) (scope *Scope, ok bool) {
	got, hasBearer := authguard.BearerToken(r.Header.Get("Authorization"))
	sum := authguard.NewDigest(got)
	want := h.token.Load()
	admin := want == nil || (hasBearer && subtle.ConstantTimeCompare(sum[:], want[:]) == 1)
	if hasBearer {
		if keys := h.portals.Load(); keys != nil {
			for _, k := range *keys {
				if subtle.ConstantTimeCompare(sum[:], k.sum[:]) == 1 {
					scope = k.scope
				}
			}
		}
	}
	switch {
	case scope != nil:
		return scope, true
	case admin:
		return nil, true
	}
	return nil, false
}

// auth requires a token on every /api route when one is set, and puts the
// caller's scope in the request context. A portal token reaches only the
// routes marked portal; every other route answers it 403.
func (h *Handler) auth(next http.Handler, portal bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A source that failed too often is answered 429 without its token
		// being looked at.
		src := h.opts.Source(r)
		if wait := h.opts.Throttle.Wait(src); wait > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(authguard.RetryAfter(wait)))
			writeError(w, http.StatusTooManyRequests, "too many failed authentications from this address; try again later")
			return
		}
		scope, ok := h.identify(r)
		if !ok {
			h.opts.Throttle.Fail(src)
			w.Header().Set("WWW-Authenticate", `Bearer realm="relay admin"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token: send Authorization: Bearer <admin.token>")
			return
		}
		if scope != nil && !portal {
			forbidden(w, scope)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), scopeKey{}, scope)))
	})
}

func forbidden(w http.ResponseWriter, s *Scope) {
	writeError(w, http.StatusForbidden, "portal "+s.Portal+" may not do this")
}

// whoami answers GET /api/whoami: the caller's role, and for a portal its
// name and destinations, so the console shows only what the caller may use.
func (h *Handler) whoami(w http.ResponseWriter, r *http.Request) {
	s := scopeOf(r)
	if s == nil {
		writeJSON(w, http.StatusOK, map[string]any{"role": "admin"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"role": "portal", "portal": s.Portal, "destinations": s.Destinations})
}
