package netaddr

import (
	"strings"
	"testing"
)

func TestCheckDialAndListen(t *testing.T) {
	for _, c := range []struct {
		addr         string
		dial, listen string // "" = accepted, else a substring of the error
	}{
		{"192.168.1.10:7400", "", ""},
		{"recv.example:7400", "", ""},
		{"[::1]:7400", "", ""},
		{":7400", "has no host", ""},
		{"192.168.1.10", "not HOST:PORT", "not HOST:PORT"},
		{"host:0", "1 to 65535", "1 to 65535"},
		{"host:65536", "1 to 65535", "1 to 65535"},
		{"host:http", "1 to 65535", "1 to 65535"},
		{"", "not HOST:PORT", "not HOST:PORT"},
	} {
		check := func(what string, err error, want string) {
			t.Helper()
			switch {
			case want == "" && err != nil:
				t.Errorf("%s(%q) = %v, want accepted", what, c.addr, err)
			case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
				t.Errorf("%s(%q) = %v, want an error with %q", what, c.addr, err, want)
			}
		}
		check("CheckDial", CheckDial(c.addr), c.dial)
		check("CheckListen", CheckListen(c.addr), c.listen)
	}
}
