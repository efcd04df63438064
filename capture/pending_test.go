package capture

import (
	"testing"
	"time"

	"framepush/frame"
)

func TestPendingKeepsTheNewest(t *testing.T) {
	p := NewPending()
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	if p.Put(Event{Time: t0, Kind: frame.GPIO}) {
		t.Fatal("the first Put replaced something")
	}
	if !p.Put(Event{Time: t0.Add(time.Second), Kind: frame.GPIO}) || !p.Put(Event{Time: t0.Add(2 * time.Second), Kind: frame.Signal}) {
		t.Fatal("a Put onto a waiting event did not report the replacement")
	}
	select {
	case ev := <-p.C():
		if ev.Kind != frame.Signal || !ev.Time.Equal(t0.Add(2*time.Second)) {
			t.Fatalf("delivered %+v, want the newest", ev)
		}
	default:
		t.Fatal("nothing waiting")
	}
	select {
	case ev := <-p.C():
		t.Fatalf("a replaced event was delivered too: %+v", ev)
	default:
	}
	if p.Replaced() != 2 {
		t.Fatalf("Replaced() = %d, want 2", p.Replaced())
	}
}
