package ingest

import (
	"fmt"
	"net/netip"

	"github.com/relaygw/relay/config"
)

// Security is the part of Settings that config's ingest.auth,
// routes[].auth and ingest.trusted_proxies compile to.
type Security struct {
	Auth           *Verifier
	RouteAuth      map[string]*Verifier
	TrustedProxies []netip.Prefix
}

// CompileSecurity compiles cfg's auth blocks and trusted proxies. Routes
// that share a webhook_id agree on auth (config validation sees to it),
// so the first one's is the webhook_id's.
func CompileSecurity(cfg *config.Config) (Security, error) {
	var sec Security
	var err error
	if sec.Auth, err = NewVerifier(cfg.Ingest.Auth); err != nil {
		return Security{}, fmt.Errorf("ingest.auth: %w", err)
	}
	for i, r := range cfg.Routes {
		if r.Auth == nil {
			continue
		}
		if _, done := sec.RouteAuth[r.WebhookID]; done {
			continue
		}
		v, err := NewVerifier(r.Auth)
		if err != nil {
			return Security{}, fmt.Errorf("route %d: auth: %w", i+1, err)
		}
		if sec.RouteAuth == nil {
			sec.RouteAuth = make(map[string]*Verifier)
		}
		sec.RouteAuth[r.WebhookID] = v
	}
	proxies, err := config.ParseCIDRs(cfg.Ingest.TrustedProxies)
	if err != nil {
		return Security{}, fmt.Errorf("ingest.trusted_proxies: %w", err)
	}
	sec.TrustedProxies = proxies
	return sec, nil
}
