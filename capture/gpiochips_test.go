package capture

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestListGPIOChipsOnThisMachine(t *testing.T) {
	chips, err := ListGPIOChips()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range chips {
		if !strings.HasPrefix(c.Path, "/dev/gpiochip") || c.Label == "" {
			t.Errorf("chip %+v lacks a /dev path or a label", c)
		}
		for i, l := range c.Lines {
			if l.Offset != i {
				t.Errorf("%s: line %d has offset %d", c.Path, i, l.Offset)
			}
		}
	}
	var b bytes.Buffer
	if err := FormatGPIOChips(&b, chips); err != nil {
		t.Fatal(err)
	}
	if b.Len() == 0 {
		t.Fatal("no output")
	}
}

func TestFormatGPIOChips(t *testing.T) {
	chips := []GPIOChip{
		{Path: "/dev/gpiochip0", Name: "gpiochip0", Label: "pinctrl-rp1", Lines: []GPIOLineInfo{
			{Offset: 0, Name: "ID_SDA"},
			{Offset: 17, Name: "GPIO17", Consumer: "framepush@812", Used: true},
		}},
		{Path: "/dev/gpiochip1", Name: "gpiochip1", Label: "9030000.pl061", Lines: []GPIOLineInfo{
			{Offset: 0}, {Offset: 3},
		}},
	}
	var b bytes.Buffer
	if err := FormatGPIOChips(&b, chips); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"/dev/gpiochip0", `label "pinctrl-rp1"`, "/dev/gpiochip1", `label "9030000.pl061"`,
		"line: NAME", "chip: LABEL", "offset: N", `used by "framepush@812"`, "ID_SDA", "free",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Unnamed lines show "-" with their offset.
	found := false
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "3" && f[1] == "-" && f[2] == "free" {
			found = true
		}
	}
	if !found {
		t.Errorf("no row for unnamed line 3:\n%s", out)
	}

	b.Reset()
	if err := FormatGPIOChips(&b, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "no chips") {
		t.Errorf("empty listing: %q", b.String())
	}
}

func TestGPIONaturalOrder(t *testing.T) {
	paths := []string{"/dev/gpiochip10", "/dev/gpiochip2", "/dev/gpiochip0", "/dev/gpiochip1"}
	slices.SortFunc(paths, gpioNaturalCompare)
	want := []string{"/dev/gpiochip0", "/dev/gpiochip1", "/dev/gpiochip2", "/dev/gpiochip10"}
	if !slices.Equal(paths, want) {
		t.Fatalf("order %v, want %v", paths, want)
	}
}

func ExampleFormatGPIOChips() {
	FormatGPIOChips(os.Stdout, []GPIOChip{{Path: "/dev/gpiochip0", Name: "gpiochip0", Label: "9030000.pl061", Lines: []GPIOLineInfo{
		{Offset: 0}, {Offset: 1, Name: "GPIO17", Consumer: "framepush@812", Used: true},
	}}})
	// Output:
	// GPIO chips. In the config, name a trigger line as `line: NAME` (named lines only)
	// or as `chip: LABEL` plus `offset: N` (any line; the label survives gpiochipN renumbering).
	//
	// /dev/gpiochip0  name gpiochip0  label "9030000.pl061"  2 lines
	//   offset  name    state
	//   0       -       free
	//   1       GPIO17  used by "framepush@812"
}
