// Package bytesize parses and prints byte counts written with a unit
// (65536, 512KiB, 64MiB, 10MB). Both the agent's configuration and
// framerecv's flags use it; it imports no project package, so framerecv does
// not link the agent's configuration to read a size.
package bytesize

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Size is a byte count written as a plain number or with a binary or
// decimal unit: 65536, 64KiB, 512MiB, 1GiB, 10MB.
type Size int64

// Units.
const (
	KiB Size = 1 << 10
	MiB Size = 1 << 20
	GiB Size = 1 << 30
)

var units = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1},
}

// Parse parses "64MiB" and friends.
func Parse(s string) (Size, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(t, 64)
	if err != nil || n < 0 || n*float64(mult) > 1<<62 {
		return 0, fmt.Errorf("%q is not a size (want e.g. 65536, 512KiB, 64MiB, 1GiB)", s)
	}
	return Size(n * float64(mult)), nil
}

// UnmarshalYAML accepts a number or a string with a unit.
func (b *Size) UnmarshalYAML(n *yaml.Node) error {
	v, err := Parse(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %v", n.Line, err)
	}
	*b = v
	return nil
}

// MarshalYAML writes the most readable exact form.
func (b Size) MarshalYAML() (any, error) { return b.String(), nil }

func (b Size) String() string {
	for _, u := range []struct {
		s string
		m Size
	}{{"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB}} {
		if b != 0 && b%u.m == 0 {
			return strconv.FormatInt(int64(b/u.m), 10) + u.s
		}
	}
	return strconv.FormatInt(int64(b), 10)
}
