package main

import (
	"net"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// stampSocket asks the kernel to stamp each segment c receives with the
// time it arrived (SO_TIMESTAMPNS).
func stampSocket(c *net.TCPConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	}); err != nil {
		return err
	}
	return serr
}

// recvStamped reads from raw into p with recvmsg(2) and returns the
// arrival stamp of the last segment read, if the kernel gave one.
func recvStamped(raw syscall.RawConn, p, oob []byte) (int, time.Time, error) {
	var n, oobn int
	var rerr error
	err := raw.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = unix.Recvmsg(int(fd), p, oob, 0)
		return rerr != unix.EAGAIN
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return 0, time.Time{}, err
	}
	var at time.Time
	msgs, perr := unix.ParseSocketControlMessage(oob[:oobn])
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
