// Package netaddr holds the HOST:PORT rules shared by configuration
// validation and the parts that use the addresses, so that `framepush
// config check` refuses exactly what the sender or a listener would.
package netaddr

import (
	"fmt"
	"net"
	"strconv"
)

// CheckDial checks an address to connect to: HOST:PORT with a host (a name,
// an IPv4 address or a bracketed IPv6 address) and a port from 1 to 65535.
// An empty host is refused: Go would dial the local machine, which is never
// what a camera on a board means by ":7400".
func CheckDial(a string) error {
	host, err := check(a)
	if err != nil {
		return err
	}
	if host == "" {
		return fmt.Errorf("%q has no host (%s)", a, want)
	}
	return nil
}

// CheckListen checks an address to listen on: HOST:PORT where an empty
// host means every interface.
func CheckListen(a string) error {
	_, err := check(a)
	return err
}

const want = "want HOST:PORT, e.g. 192.168.1.10:7400"

func check(a string) (host string, err error) {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return "", fmt.Errorf("%q is not HOST:PORT: %s (%s)", a, stripAddr(err), want)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return "", fmt.Errorf("%q: port %q is not a number from 1 to 65535 (%s)", a, port, want)
	}
	return host, nil
}

// stripAddr keeps net.AddrError's reason without repeating the address.
func stripAddr(err error) string {
	if ae, ok := err.(*net.AddrError); ok {
		return ae.Err
	}
	return err.Error()
}
