package main

import (
	"net"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// stamper receives from a socket whose segments the kernel stamps on
// arrival (SO_TIMESTAMPNS), with recvmsg(2).
type stamper struct {
	raw syscall.RawConn
	oob []byte
}

// newStamper asks the kernel to stamp each segment c receives.
func newStamper(c *net.TCPConn) (*stamper, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	}); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, serr
	}
	return &stamper{raw: raw, oob: make([]byte, 128)}, nil
}

// recv reads into p and returns the arrival stamp of the last segment
// read, if the kernel gave one. It waits for data as a connection's Read
// does, deadlines included.
func (s *stamper) recv(p []byte) (int, time.Time, error) {
	var n, oobn int
	var rerr error
	err := s.raw.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = unix.Recvmsg(int(fd), p, s.oob, 0)
		return rerr != unix.EAGAIN && rerr != unix.EINTR
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return 0, time.Time{}, err
	}
	var at time.Time
	msgs, perr := unix.ParseSocketControlMessage(s.oob[:oobn])
	if perr == nil {
		for _, m := range msgs {
			if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= int(unsafe.Sizeof(unix.Timespec{})) {
				ts := (*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
				at = time.Unix(ts.Unix())
			}
		}
	}
	return n, at, nil
}
