package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// stampedConn is a keep-alive HTTP/1.1 connection for GET requests that
// knows when each answer reached its socket: the kernel stamps every
// segment it receives, and the stamp of the answer's last segment is when
// the engine's answer had arrived, however late the querier then got a
// core to read it. Where the kernel gives no stamps (another system, or
// SO_TIMESTAMPNS refused) it reads as any connection and answers carry no
// stamp.
type stampedConn struct {
	host   string
	prefix string // the base URL's path, before every request's path
	tcp    *net.TCPConn
	stamps *stamper // nil without stamps
	br     *bufio.Reader
	last   time.Time // the stamp of the last segment read
}

// dialStamped connects to the host of base, a URL. Its error stamps is
// why the connection has no arrival stamps, if it has none.
func dialStamped(base string) (s *stampedConn, stamps, err error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, nil, err
	}
	c, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		return nil, nil, err
	}
	tcp := c.(*net.TCPConn)
	s = &stampedConn{host: u.Host, prefix: strings.TrimRight(u.Path, "/"), tcp: tcp}
	if s.stamps, stamps = newStamper(tcp); stamps != nil {
		stamps = fmt.Errorf("querier: no arrival stamps on %s: %w", u.Host, stamps)
	}
	s.br = bufio.NewReader(s)
	return s, stamps, nil
}

// Read reads from the socket, keeping the arrival stamp.
func (s *stampedConn) Read(p []byte) (int, error) {
	if s.stamps == nil {
		return s.tcp.Read(p)
	}
	n, at, err := s.stamps.recv(p)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, io.EOF
	}
	if !at.IsZero() {
		s.last = at
	}
	return n, nil
}

// get asks for path and returns the answer's status and body and when its
// last byte reached the socket (zero when the kernel gave no stamp). With
// errClosed the answer is whole but the engine closed the connection.
func (s *stampedConn) get(path string) (int, []byte, time.Time, error) {
	s.last = time.Time{}
	if err := s.tcp.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return 0, nil, time.Time{}, err
	}
	if _, err := io.WriteString(s.tcp, "GET "+s.prefix+path+" HTTP/1.1\r\nHost: "+s.host+"\r\n\r\n"); err != nil {
		return 0, nil, time.Time{}, err
	}
	resp, err := http.ReadResponse(s.br, nil)
	if err != nil {
		return 0, nil, time.Time{}, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, nil, time.Time{}, err
	}
	if resp.Close {
		err = errClosed
	}
	return resp.StatusCode, body, s.last, err
}

// errClosed says the engine closed the connection after its answer.
var errClosed = errors.New("querier: connection closed by the engine")

// Close closes the connection.
func (s *stampedConn) Close() error { return s.tcp.Close() }
