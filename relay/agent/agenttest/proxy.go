package agenttest

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy is a minimal HTTP CONNECT proxy (what HTTPS_PROXY points at).
// Routes maps a requested host:port to the address it really dials, so a
// test can ask for a name that the certificate holds and that Go's
// ProxyFromEnvironment does not exempt as loopback.
type Proxy struct {
	// URL is the proxy's address as an http:// URL.
	URL *url.URL
	// Routes rewrites CONNECT targets; set it before the first request.
	Routes map[string]string

	ln       net.Listener
	tunnels  atomic.Int64
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	live     map[net.Conn]*atomic.Bool // each tunnel's frozen flag, by client side
	closed   bool
	handlers sync.WaitGroup
}

// NewProxy starts a proxy on a loopback port; it is closed at cleanup.
func NewProxy(tb testing.TB) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("agenttest: listen: %v", err)
	}
	p := &Proxy{
		URL:   &url.URL{Scheme: "http", Host: ln.Addr().String()},
		ln:    ln,
		conns: map[net.Conn]struct{}{},
		live:  map[net.Conn]*atomic.Bool{},
	}
	p.handlers.Go(p.accept)
	tb.Cleanup(p.Close)
	return p
}

// Tunnels counts the CONNECT tunnels opened so far.
func (p *Proxy) Tunnels() int { return int(p.tunnels.Load()) }

// Drop closes every open tunnel at the TCP level, as a NAT or firewall
// restart would; new tunnels are still accepted.
func (p *Proxy) Drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

// Freeze makes every tunnel open now stop carrying bytes without closing,
// the way a connection dies silently after a network change: what either
// side sends is swallowed. Tunnels opened later work normally.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range p.live {
		t.Store(true)
	}
}

// Close stops accepting and closes every tunnel.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.ln.Close()
	p.Drop()
	p.handlers.Wait()
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			c.Close()
			return
		}
		p.handlers.Go(func() { p.serve(c) })
	}
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
}

func (p *Proxy) serve(client net.Conn) {
	defer p.untrack(client)
	defer client.Close()
	br := bufio.NewReader(client)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	if req.Method != http.MethodConnect {
		io.WriteString(client, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
		return
	}
	target := req.Host
	if r, ok := p.Routes[target]; ok {
		target = r
	}
	upstream, err := net.Dial("tcp", target)
	if err != nil {
		io.WriteString(client, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
		return
	}
	if !p.track(upstream) {
		upstream.Close()
		return
	}
	defer p.untrack(upstream)
	defer upstream.Close()
	p.tunnels.Add(1)
	frozen := new(atomic.Bool)
	p.mu.Lock()
	p.live[client] = frozen
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.live, client)
		p.mu.Unlock()
	}()
	if _, err := io.WriteString(client, "HTTP/1.1 200 Connection Established\r\n\r\n"); err != nil {
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		pipe(upstream, br, frozen) // what the client sent after CONNECT is buffered in br
		upstream.Close()
	})
	pipe(client, upstream, frozen)
	client.Close()
	wg.Wait()
}

// pipe copies src to dst until src ends, swallowing everything once frozen.
func pipe(dst io.Writer, src io.Reader, frozen *atomic.Bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !frozen.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
