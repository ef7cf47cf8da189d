package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"
)

// stampedConn is a keep-alive HTTP/1.1 connection for GET requests that
// knows when each answer reached its socket: the kernel stamps every
// segment it receives, and the stamp of the answer's last segment is when
// the engine's answer had arrived, however late the querier then got a
// core to read it.
type stampedConn struct {
	host string
	tcp  *net.TCPConn
	raw  syscall.RawConn
	br   *bufio.Reader
	oob  []byte
	last time.Time // the stamp of the last segment read
}

// dialStamped connects to the host of base, a URL.
func dialStamped(base string) (*stampedConn, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	c, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		return nil, err
	}
	tcp := c.(*net.TCPConn)
	raw, err := tcp.SyscallConn()
	if err == nil {
		err = stampSocket(tcp)
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("stamps on %s: %w", u.Host, err)
	}
	s := &stampedConn{host: u.Host, tcp: tcp, raw: raw, oob: make([]byte, 128)}
	s.br = bufio.NewReader(s)
	return s, nil
}

// Read reads from the socket, keeping the arrival stamp.
func (s *stampedConn) Read(p []byte) (int, error) {
	n, at, err := recvStamped(s.raw, p, s.oob)
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
// last byte reached the socket (zero when the kernel gave no stamp).
func (s *stampedConn) get(path string) (int, []byte, time.Time, error) {
	s.last = time.Time{}
	if err := s.tcp.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return 0, nil, time.Time{}, err
	}
	if _, err := io.WriteString(s.tcp, "GET "+path+" HTTP/1.1\r\nHost: "+s.host+"\r\n\r\n"); err != nil {
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
var errClosed = fmt.Errorf("connection closed by the engine")

func (s *stampedConn) Close() error { return s.tcp.Close() }
