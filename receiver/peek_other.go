//go:build !unix

package receiver

import "net"

// waitingNow cannot ask the socket without waiting on this system; the
// caller falls back to a read with a tiny deadline.
func waitingNow(net.Conn) (waiting, ok bool) { return false, false }
