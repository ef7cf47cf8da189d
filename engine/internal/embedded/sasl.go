package embedded

import (
	"encoding/binary"
	"net"
	"sync"
	"time"
)

// Kafka API keys and the error code the shim below reads and writes.
const (
	keySASLHandshake            = 17
	keyAPIVersions              = 18
	keySASLAuthenticate         = 36
	errSASLAuthenticationFailed = 58 // SASL_AUTHENTICATION_FAILED
)

// authListener wraps the connections it accepts in authConns.
type authListener struct{ net.Listener }

func (l authListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &authConn{Conn: c}, nil
}

// authConn is a client connection to the broker that answers a failed SASL
// authentication as Kafka does, with SASL_AUTHENTICATION_FAILED and a
// message, before the connection closes. kfake closes it without a word,
// which a client can only report as EOF.
//
// It follows the plaintext request and response streams (a listener with
// TLS is wrapped inside the TLS layer): kfake answers a connection's
// requests one at a time and in order, in one Write each, so the oldest
// request not answered when kfake closes the connection is the one that
// failed. Clients authenticate before anything else, so once it reads
// another request it stops following the streams.
type authConn struct {
	net.Conn

	mu         sync.Mutex
	in         frames
	unanswered []request // read, in order, not yet answered
	mechanism  string    // of the last SaslHandshake
	settled    bool      // a request past authentication was read

	closeOnce sync.Once
	closeErr  error
}

// request is the header of a request read from the client.
type request struct {
	key, version int16
	corr         int32
}

func (c *authConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	if !c.settled {
		c.in.feed(p[:n], c.request)
	}
	c.mu.Unlock()
	return n, err
}

// request notes the request whose first bytes are head. c.mu is held.
func (c *authConn) request(head []byte) {
	if len(head) < 8 {
		return
	}
	r := request{key: int16(binary.BigEndian.Uint16(head)), version: int16(binary.BigEndian.Uint16(head[2:])), corr: int32(binary.BigEndian.Uint32(head[4:]))}
	switch r.key {
	case keySASLHandshake:
		c.mechanism = handshakeMechanism(head[8:])
	case keyAPIVersions, keySASLAuthenticate:
	default:
		c.settled, c.unanswered = true, nil
		return
	}
	c.unanswered = append(c.unanswered, r)
}

func (c *authConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if len(c.unanswered) > 0 {
		c.unanswered = c.unanswered[1:]
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// Close answers a SaslAuthenticate request left unanswered with an
// authentication failure, then closes the connection.
func (c *authConn) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		var failed *request
		if len(c.unanswered) > 0 && c.unanswered[0].key == keySASLAuthenticate {
			failed = &c.unanswered[0]
		}
		mech := c.mechanism
		c.mu.Unlock()
		if failed != nil {
			msg := "Authentication failed: invalid username or password"
			if mech != "" {
				msg += " for SASL mechanism " + mech
			}
			_ = c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = c.Conn.Write(authFailed(failed.corr, failed.version, msg))
		}
		c.closeErr = c.Conn.Close()
	})
	return c.closeErr
}

// handshakeMechanism reads the mechanism of a SaslHandshake request (v0 or
// v1, never flexible) from the bytes after its correlation id: the client
// id (a nullable string), then the mechanism (a string). It returns "" if
// they are cut short.
func handshakeMechanism(b []byte) string {
	if len(b) < 2 {
		return ""
	}
	if n := int16(binary.BigEndian.Uint16(b)); n > 0 {
		if len(b) < 2+int(n) {
			return ""
		}
		b = b[2+int(n):]
	} else {
		b = b[2:]
	}
	if len(b) < 2 {
		return ""
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+n {
		return ""
	}
	return string(b[2 : 2+n])
}

// authFailed encodes a SaslAuthenticate response of version (0 to 2) to
// the request corr with SASL_AUTHENTICATION_FAILED and msg.
func authFailed(corr int32, version int16, msg string) []byte {
	flexible := version >= 2
	b := make([]byte, 4, 32+len(msg))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	if flexible {
		b = append(b, 0) // no tagged fields in the header
	}
	b = binary.BigEndian.AppendUint16(b, errSASLAuthenticationFailed)
	if flexible {
		b = binary.AppendUvarint(b, uint64(len(msg))+1)
		b = append(b, msg...)
		b = binary.AppendUvarint(b, 1) // no auth bytes
	} else {
		b = binary.BigEndian.AppendUint16(b, uint16(len(msg)))
		b = append(b, msg...)
		b = binary.BigEndian.AppendUint32(b, 0) // no auth bytes
	}
	if version >= 1 {
		b = binary.BigEndian.AppendUint64(b, 0) // session lifetime
	}
	if flexible {
		b = append(b, 0) // no tagged fields in the body
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// frames splits a stream of size-prefixed Kafka frames, however it is cut
// into reads, handing the first bytes of each whole frame to a callback.
type frames struct {
	size  [4]byte
	nsize int
	left  int    // bytes of the frame still to come
	head  []byte // its first bytes, up to maxHead
}

// maxHead is how much of each frame frames keeps: the request header and a
// SaslHandshake's mechanism.
const maxHead = 512

func (f *frames) feed(b []byte, frame func(head []byte)) {
	for len(b) > 0 {
		if f.nsize < 4 {
			k := copy(f.size[f.nsize:], b)
			f.nsize += k
			b = b[k:]
			if f.nsize == 4 {
				f.left = int(binary.BigEndian.Uint32(f.size[:]))
				f.head = f.head[:0]
				if f.left == 0 {
					f.nsize = 0
					frame(f.head)
				}
			}
			continue
		}
		k := min(len(b), f.left)
		if room := maxHead - len(f.head); room > 0 {
			f.head = append(f.head, b[:min(k, room)]...)
		}
		f.left -= k
		b = b[k:]
		if f.left == 0 {
			f.nsize = 0
			frame(f.head)
		}
	}
}
