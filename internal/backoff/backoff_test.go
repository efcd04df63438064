package backoff

import (
	"testing"
	"time"
)

func TestBoundGrowsAndCaps(t *testing.T) {
	b := New(Policy{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2})
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		if got := b.Bound(); got != w*time.Millisecond {
			t.Fatalf("attempt %d: bound %v, want %v", i, got, w*time.Millisecond)
		}
		b.Next()
	}
	b.Reset()
	if got := b.Bound(); got != 100*time.Millisecond {
		t.Fatalf("after reset: bound %v", got)
	}
}

func TestFullJitterWithinBound(t *testing.T) {
	b := New(Policy{Initial: time.Second, Max: 8 * time.Second, Multiplier: 3})
	b.Rand = func() float64 { return 0.5 }
	if d := b.Next(); d != 500*time.Millisecond {
		t.Fatalf("first delay %v, want 500ms", d)
	}
	if d := b.Next(); d != 1500*time.Millisecond {
		t.Fatalf("second delay %v, want 1.5s", d)
	}
	b.Rand = nil
	for i := 0; i < 100; i++ {
		bound := b.Bound()
		if d := b.Next(); d < 0 || d > bound {
			t.Fatalf("delay %v outside [0,%v]", d, bound)
		}
	}
	if b.Attempts() != 102 {
		t.Fatalf("attempts %d", b.Attempts())
	}
}

func TestZeroPolicyIsSane(t *testing.T) {
	var b Backoff
	if got := b.Bound(); got != Default.Initial {
		t.Fatalf("zero policy bound %v, want %v", got, Default.Initial)
	}
}
