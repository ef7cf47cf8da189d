//go:build !linux

package main

import (
	"net"
	"syscall"
	"time"
)

// stampSocket does nothing where the kernel's receive stamps are not
// supported here: the answers then count as arriving when read.
func stampSocket(*net.TCPConn) error { return nil }

// recvStamped reads from raw into p; it has no arrival stamp.
func recvStamped(raw syscall.RawConn, p, _ []byte) (int, time.Time, error) {
	var n int
	var rerr error
	err := raw.Read(func(fd uintptr) bool {
		n, rerr = syscall.Read(int(fd), p)
		return rerr != syscall.EAGAIN
	})
	if err == nil {
		err = rerr
	}
	return n, time.Time{}, err
}
