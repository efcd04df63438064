//go:build unix

package receiver

import (
	"errors"
	"net"
	"syscall"
)

// waitingNow reports whether the socket under nc holds unread bytes right
// now, without waiting: a recv with MSG_PEEK|MSG_DONTWAIT, which consumes
// nothing. ok is false when nc gives no file descriptor to ask.
func waitingNow(nc net.Conn) (waiting, ok bool) {
	sc, isSC := nc.(syscall.Conn)
	if !isSC {
		return false, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false, false
	}
	var n int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, rerr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true // never wait for readiness
	})
	if err != nil {
		return false, false
	}
	if rerr != nil {
		// EAGAIN: nothing there. Any other error: the next read says it.
		return false, errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EWOULDBLOCK)
	}
	return n > 0, true // n == 0: the peer closed; nothing past the payload
}
