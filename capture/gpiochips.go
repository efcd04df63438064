package capture

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// GPIOChip describes one GPIO controller (a /dev/gpiochipN character
// device) and its lines.
type GPIOChip struct {
	Path  string // "/dev/gpiochip0"
	Name  string // kernel name, "gpiochip0"; its number may change between kernels
	Label string // driver label, "pinctrl-rp1", "9030000.pl061": the stable way to name it
	Lines []GPIOLineInfo
}

// GPIOLineInfo describes one line of a chip.
type GPIOLineInfo struct {
	Offset   int    // position on the chip: the config's offset
	Name     string // from the device tree's gpio-line-names; "" when unnamed
	Consumer string // who holds the line, e.g. "framepush@812" or a kernel driver
	Used     bool   // requested by someone (a consumer is set)
}

// ListGPIOChips lists the GPIO chips periph's character-device driver
// found, in path order. Line state is as seen when the driver initialised
// (the first GPIO call of the process). A machine without GPIO returns an
// empty list and no error.
func ListGPIOChips() ([]GPIOChip, error) {
	chips, err := gpioChips()
	if err != nil {
		return nil, err
	}
	out := make([]GPIOChip, 0, len(chips))
	for _, c := range chips {
		gc := GPIOChip{Path: c.Path(), Name: c.Name(), Label: c.Label()}
		for _, l := range c.Lines() {
			name := l.Name()
			if name == "-" || name == "_" {
				name = ""
			}
			gc.Lines = append(gc.Lines, GPIOLineInfo{Offset: l.Number(), Name: name, Consumer: l.Consumer(), Used: l.Consumer() != ""})
		}
		out = append(out, gc)
	}
	slices.SortFunc(out, func(a, b GPIOChip) int { return gpioNaturalCompare(a.Path, b.Path) })
	return out, nil
}

// gpioNaturalCompare orders "gpiochip2" before "gpiochip10".
func gpioNaturalCompare(a, b string) int {
	ta, na := gpioSplitNumber(a)
	tb, nb := gpioSplitNumber(b)
	if c := strings.Compare(ta, tb); c != 0 {
		return c
	}
	return na - nb
}

func gpioSplitNumber(s string) (string, int) {
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		i--
	}
	n, _ := strconv.Atoi(s[i:])
	return s[:i], n
}

// FormatGPIOChips writes chips as a human-readable table: one header line
// per chip (path, name, label, line count) and one row per line (offset,
// name or "-", free or the consumer holding it), preceded by how to name a
// line in the configuration.
func FormatGPIOChips(w io.Writer, chips []GPIOChip) error {
	if len(chips) == 0 {
		_, err := fmt.Fprintln(w, "GPIO: no chips found (no /dev/gpiochip* character devices).")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GPIO chips. In the config, name a trigger line as `line: NAME` (named lines only)")
	fmt.Fprintln(tw, "or as `chip: LABEL` plus `offset: N` (any line; the label survives gpiochipN renumbering).")
	for _, c := range chips {
		fmt.Fprintf(tw, "\n%s  name %s  label %q  %d lines\n", c.Path, c.Name, c.Label, len(c.Lines))
		fmt.Fprintln(tw, "  offset\tname\tstate")
		for _, l := range c.Lines {
			name := l.Name
			if name == "" {
				name = "-"
			}
			state := "free"
			if l.Used {
				state = "used"
				if l.Consumer != "" {
					state += " by " + strconv.Quote(l.Consumer)
				}
			}
			fmt.Fprintf(tw, "  %d\t%s\t%s\n", l.Offset, name, state)
		}
	}
	return tw.Flush()
}
