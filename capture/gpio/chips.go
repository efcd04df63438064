package gpio

import (
	"slices"
	"strconv"
	"strings"
)

// Chip describes one GPIO controller (a /dev/gpiochipN character
// device) and its lines.
type Chip struct {
	Path  string // "/dev/gpiochip0"
	Name  string // kernel name, "gpiochip0"; its number may change between kernels
	Label string // driver label, "pinctrl-rp1", "9030000.pl061": the stable way to name it
	Lines []LineInfo
}

// LineInfo describes one line of a chip.
type LineInfo struct {
	Offset   int    // position on the chip: the config's offset
	Name     string // from the device tree's gpio-line-names; "" when unnamed
	Consumer string // who holds the line, e.g. "framepush@812" or a kernel driver
	Used     bool   // requested by someone (a consumer is set)
}

// ListChips lists the GPIO chips periph's character-device driver
// found, in path order. Line state is as seen when the driver initialised
// (the first GPIO call of the process). A machine without GPIO returns an
// empty list and no error.
func ListChips() ([]Chip, error) {
	chips, err := openChips()
	if err != nil {
		return nil, err
	}
	out := make([]Chip, 0, len(chips))
	for _, c := range chips {
		gc := Chip{Path: c.Path(), Name: c.Name(), Label: c.Label()}
		for _, l := range c.Lines() {
			name := l.Name()
			if name == "-" || name == "_" {
				name = ""
			}
			gc.Lines = append(gc.Lines, LineInfo{Offset: l.Number(), Name: name, Consumer: l.Consumer(), Used: l.Consumer() != ""})
		}
		out = append(out, gc)
	}
	slices.SortFunc(out, func(a, b Chip) int { return naturalCompare(a.Path, b.Path) })
	return out, nil
}

// naturalCompare orders "gpiochip2" before "gpiochip10".
func naturalCompare(a, b string) int {
	ta, na := splitNumber(a)
	tb, nb := splitNumber(b)
	if c := strings.Compare(ta, tb); c != 0 {
		return c
	}
	return na - nb
}

func splitNumber(s string) (string, int) {
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		i--
	}
	n, _ := strconv.Atoi(s[i:])
	return s[:i], n
}
