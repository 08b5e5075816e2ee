package authguard

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// BearerToken returns the token of an Authorization header value that uses
// the Bearer scheme, whose name is case-insensitive (RFC 9110, 11.1).
func BearerToken(header string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// Digest is a token as it is kept for comparing: comparing digests of
// equal length in constant time leaks neither bytes nor length.
type Digest [sha256.Size]byte

// NewDigest returns tok's digest.
func NewDigest(tok string) Digest { return sha256.Sum256([]byte(tok)) }

// Equal reports whether tok's digest is d, in constant time.
func (d Digest) Equal(tok string) bool {
	got := NewDigest(tok)
	return subtle.ConstantTimeCompare(got[:], d[:]) == 1
}

// Options tunes a Throttle; zero fields take the defaults the relay passes
// from config (config.DefaultAuthFailure*).
type Options struct {
	// Burst is how many failures a source may have before it is refused.
	Burst int
	// Every is how often one failure is forgiven.
	Every time.Duration
	// MaxSources bounds the sources remembered; past it, those that have
	// recovered are forgotten first.
	MaxSources int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Throttle counts failed authentications per source: an IPv4 address, or
// the /64 of an IPv6 one (one host's usual allocation). A source that has
// used up its burst is refused without its credentials being looked at,
// until Every has forgiven a failure. Successes cost nothing.
type Throttle struct {
	opts    Options
	mu      sync.Mutex
	sources map[netip.Prefix]*rate.Limiter
}

// NewThrottle returns a Throttle.
func NewThrottle(o Options) *Throttle {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Throttle{opts: o, sources: map[netip.Prefix]*rate.Limiter{}}
}

// source is the key of remoteAddr (host:port, as http.Request has it).
func source(remoteAddr string) netip.Prefix {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{}
	}
	ip = ip.Unmap().WithZone("")
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

// Wait returns how long remoteAddr must wait before it may try again; 0
// means it may try now.
func (t *Throttle) Wait(remoteAddr string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	lim := t.sources[source(remoteAddr)]
	if lim == nil {
		return 0
	}
	tokens := lim.TokensAt(t.opts.Now())
	if tokens >= 1 {
		return 0
	}
	return time.Duration((1 - tokens) * float64(t.opts.Every))
}

// Fail records a failed authentication from remoteAddr.
func (t *Throttle) Fail(remoteAddr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	key := source(remoteAddr)
	now := t.opts.Now()
	lim := t.sources[key]
	if lim == nil {
		if len(t.sources) >= t.opts.MaxSources {
			t.evict(now)
		}
		lim = rate.NewLimiter(rate.Every(t.opts.Every), t.opts.Burst)
		t.sources[key] = lim
	}
	lim.AllowN(now, 1)
}

// evict forgets the sources that have recovered, or when none has, one
// source: a flood from many addresses must not grow the map, and forgetting
// a source only gives it its burst back.
func (t *Throttle) evict(now time.Time) {
	for k, lim := range t.sources {
		if lim.TokensAt(now) >= float64(t.opts.Burst) {
			delete(t.sources, k)
		}
	}
	for k := range t.sources {
		if len(t.sources) < t.opts.MaxSources {
			return
		}
		delete(t.sources, k)
	}
}

// RetryAfter is d in whole seconds, at least 1, for a Retry-After header.
func RetryAfter(d time.Duration) int {
	return max(int((d+time.Second-1)/time.Second), 1)
}
