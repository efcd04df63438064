package gpio

import (
	"slices"
	"strings"
	"testing"
)

func TestListGPIOChipsOnThisMachine(t *testing.T) {
	chips, err := ListChips()
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
}

func TestGPIONaturalOrder(t *testing.T) {
	paths := []string{"/dev/gpiochip10", "/dev/gpiochip2", "/dev/gpiochip0", "/dev/gpiochip1"}
	slices.SortFunc(paths, naturalCompare)
	want := []string{"/dev/gpiochip0", "/dev/gpiochip1", "/dev/gpiochip2", "/dev/gpiochip10"}
	if !slices.Equal(paths, want) {
		t.Fatalf("order %v, want %v", paths, want)
	}
}
