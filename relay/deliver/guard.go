package deliver

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// A receiver's redirect is a request the relay makes on the receiver's
// behalf, from inside the relay's network. The hops after the first go
// through a client whose dialer checks the address it actually connects
// to (after DNS, so a name that resolves differently the second time gains
// nothing):
//
//   - never one of the relay's own listeners (a 307 to the admin API would
//     replay the DLQ; one to /hooks would loop);
//   - never a non-public address (loopback, private, link-local,
//     unspecified, CGNAT, multicast), unless the destination's configured
//     URL is itself on one: its operator chose that network.

// hopPolicy is what one attempt's redirect hops may dial; it travels in the
// request's context to the dialer.
type hopPolicy struct {
	// private is set when the destination's own URL is on a non-public
	// address, which lifts the refusal of non-public addresses.
	private bool
}

type hopPolicyKey struct{}

// dialGuard refuses the addresses a redirect hop must not reach.
type dialGuard struct {
	own []netip.AddrPort // the relay's listeners, as bound
	// local holds this machine's addresses, for a listener bound to an
	// unspecified address, which answers on every one of them.
	local map[netip.Addr]bool
}

// newDialGuard builds the guard for listeners own (nil for none, as in an
// agent, which listens on nothing).
func newDialGuard(own []net.Addr) *dialGuard {
	g := &dialGuard{local: map[netip.Addr]bool{}}
	anyIP := false
	for _, a := range own {
		ap, err := netip.ParseAddrPort(a.String())
		if err != nil {
			continue
		}
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		anyIP = anyIP || ap.Addr().IsUnspecified()
		g.own = append(g.own, ap)
	}
	if anyIP {
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if p, err := netip.ParsePrefix(a.String()); err == nil {
					g.local[p.Addr().Unmap()] = true
				}
			}
		}
	}
	return g
}

// check refuses ap when it is one of the relay's listeners, or non-public
// while the policy does not allow that.
func (g *dialGuard) check(ap netip.AddrPort, pol hopPolicy) error {
	ip := ap.Addr().Unmap()
	for _, o := range g.own {
		if o.Port() != ap.Port() {
			continue
		}
		if o.Addr() == ip || (o.Addr().IsUnspecified() && (ip.IsLoopback() || ip.IsUnspecified() || g.local[ip])) {
			return redirectRefusal{why: fmt.Sprintf("%s is one of the relay's own listeners", ap)}
		}
	}
	if !pol.private && !publicAddr(ip) {
		return redirectRefusal{why: fmt.Sprintf("%s is not a public address, and the destination's own URL is on a public one", ap)}
	}
	return nil
}

// control is the hop dialer's Control hook: it runs on the address about to
// be connected to, after name resolution.
func (g *dialGuard) control(ctx context.Context, _, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return redirectRefusal{why: "unparsable address " + address}
	}
	pol, _ := ctx.Value(hopPolicyKey{}).(hopPolicy)
	return g.check(ap, pol)
}

// proxy is the hop transport's Proxy: through a proxy the proxy resolves
// and dials, so Relay cannot check the address. A hop that would be proxied
// is refused unless the destination is on a non-public network, where the
// class of the address is not checked anyway; Go never proxies loopback.
func (g *dialGuard) proxy(req *http.Request) (*url.URL, error) {
	p, err := http.ProxyFromEnvironment(req)
	if err != nil || p == nil {
		return p, err
	}
	if pol, _ := req.Context().Value(hopPolicyKey{}).(hopPolicy); !pol.private {
		return nil, redirectRefusal{why: "it would go through a proxy, which hides the address it leads to"}
	}
	return p, nil
}

// cgnat is the shared address space of carrier-grade NAT (RFC 6598), which
// netip does not classify.
var (
	cgnat     = netip.MustParsePrefix("100.64.0.0/10")
	broadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})
)

// publicAddr reports whether ip is an ordinary unicast address on the
// internet: not loopback, private (RFC 1918, fc00::/7), link-local,
// unspecified, "this network" (0.0.0.0/8), CGNAT or multicast.
func publicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	switch {
	case !ip.IsValid(), ip.IsLoopback(), ip.IsPrivate(), ip.IsUnspecified(),
		ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast(), ip.IsInterfaceLocalMulticast(),
		ip.IsMulticast(), cgnat.Contains(ip):
		return false
	case ip.Is4() && (ip.As4()[0] == 0 || ip == broadcast):
		return false
	}
	return true
}

// lookupFunc resolves a host name to its addresses.
type lookupFunc func(ctx context.Context, host string) ([]netip.Addr, error)

func defaultLookup(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// privateTarget reports whether u, a destination's configured URL, is on a
// non-public network: an address literal that is not public, or a name all
// of whose addresses are not. A name that does not resolve counts as public,
// the stricter answer.
func privateTarget(ctx context.Context, lookup lookupFunc, u *url.URL) bool {
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		return !publicAddr(ip)
	}
	if h := strings.ToLower(strings.TrimSuffix(host, ".")); h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	addrs, err := lookup(ctx, host)
	if err != nil || len(addrs) == 0 {
		return false
	}
	for _, a := range addrs {
		if publicAddr(a) {
			return false
		}
	}
	return true
}

// redirectRefusal is a redirect hop the guard refused to dial.
type redirectRefusal struct{ why string }

func (e redirectRefusal) Error() string { return e.why }
func (e redirectRefusal) Is(target error) bool {
	return target == ErrRedirectRefused
}
