package enginetest

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy is a TCP proxy on a loopback port between a client under test and
// a server (a database, a mail server), which the test can cut and
// restore: the server becomes unreachable for the client while it keeps
// running for everyone else. It is safe for concurrent use.
type Proxy struct {
	ln     net.Listener
	target string
	refuse bool

	mu     sync.Mutex
	cut    bool
	closed bool
	conns  map[net.Conn]struct{} // open pairs' ends, both sides
	held   []net.Conn            // accepted while cut, not answered
	wg     sync.WaitGroup
}

// ProxyOption configures StartProxy.
type ProxyOption func(*Proxy)

// Refusing makes a cut proxy reset each new connection at once, as a host
// does where nothing listens. Default: a cut proxy blackholes new
// connections (accepts them and says nothing, as a network partition
// does) and connects them through when restored.
func Refusing() ProxyOption {
	return func(p *Proxy) { p.refuse = true }
}

// StartProxy starts a proxy on a free loopback port that forwards each
// connection to target (host:port), and stops it, closing every
// connection, when the test ends.
func StartProxy(t testing.TB, target string, opts ...ProxyOption) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy: listen: %v", err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	for _, o := range opts {
		o(p)
	}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's host:port, to give the client instead of target's.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut makes target unreachable through the proxy: it closes every
// connection open through it, and new ones are blackholed (or reset, with
// Refusing) until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return
	}
	p.cut = true
	for c := range p.conns {
		_ = c.Close()
	}
}

// Restore ends a cut: the connections blackholed during it are connected
// through to target now, as a healed network would let them through, and
// new ones are forwarded again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.cut || p.closed {
		return
	}
	p.cut = false
	held := p.held
	p.held = nil
	for _, c := range held {
		p.wg.Add(1)
		go p.forward(c)
	}
}

// Close stops the proxy and closes every connection through it. It is
// safe to call twice.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	_ = p.ln.Close()
	for c := range p.conns {
		_ = c.Close()
	}
	for _, c := range p.held {
		_ = c.Close()
	}
	p.held = nil
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.mu.Lock()
		switch {
		case p.closed:
			_ = c.Close()
		case p.cut && p.refuse:
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // a reset, not an orderly close
			}
			_ = c.Close()
		case p.cut:
			p.held = append(p.held, c)
		default:
			p.wg.Add(1)
			go p.forward(c)
		}
		p.mu.Unlock()
	}
}

// forward connects client to target and copies both ways until either
// side closes or the proxy cuts them.
func (p *Proxy) forward(client net.Conn) {
	defer p.wg.Done()
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		_ = client.Close()
		return
	}
	p.mu.Lock()
	if p.cut || p.closed {
		p.mu.Unlock()
		_ = client.Close()
		_ = server.Close()
		return
	}
	p.conns[client] = struct{}{}
	p.conns[server] = struct{}{}
	p.mu.Unlock()
	var once sync.Once
	done := func() {
		once.Do(func() {
			_ = client.Close()
			_ = server.Close()
			p.mu.Lock()
			delete(p.conns, client)
			delete(p.conns, server)
			p.mu.Unlock()
		})
	}
	var both sync.WaitGroup
	both.Add(2)
	pipe := func(dst, src net.Conn) {
		defer both.Done()
		// The end of either direction, orderly or not, ends the pair:
		// the servers this proxies close whole connections.
		_, _ = io.Copy(dst, src)
		done()
	}
	go pipe(server, client)
	go pipe(client, server)
	both.Wait()
}
