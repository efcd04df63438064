package capture

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"framepush/capture/internal/capturetest"
	"framepush/frame"
)

func trigTestFake(kind frame.TriggerKind, period time.Duration) (*ticker, *capturetest.Clock) {
	c := capturetest.NewClock()
	tk := newTicker(kind, period)
	tk.now, tk.sleep = c.Now, c.Sleep
	return tk, c
}

func TestTickerScheduleIsDriftFreeAndCoalesces(t *testing.T) {
	const p = 100 * time.Millisecond
	tk, clock := trigTestFake("continuous", p)
	ctx := context.Background()
	start := clock.Now()
	wait := func() Event {
		t.Helper()
		ev, err := tk.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Kind != "continuous" || ev.Frames != 1 {
			t.Fatalf("event %+v", ev)
		}
		return ev
	}

	// The first event fires at once.
	if ev := wait(); !ev.Time.Equal(start) || len(clock.TakeSleeps()) != 0 {
		t.Fatalf("first event at %v, want at once", ev.Time.Sub(start))
	}
	// 30 ms of work: the next wait is the rest of the period, not a whole one.
	clock.Advance(30 * time.Millisecond)
	if ev := wait(); !ev.Time.Equal(start.Add(p)) {
		t.Fatalf("second event at %v, want %v", ev.Time.Sub(start), p)
	}
	if s := clock.TakeSleeps(); len(s) != 1 || s[0] != 70*time.Millisecond {
		t.Fatalf("slept %v, want [70ms]", s)
	}
	// A capture overrunning 3.5 periods: one event at once, three slots
	// skipped, then back on the original grid.
	clock.Advance(350 * time.Millisecond) // now start+450ms; slots 200, 300, 400 passed
	if ev := wait(); !ev.Time.Equal(start.Add(450 * time.Millisecond)) {
		t.Fatalf("catch-up event at %v, want 450ms", ev.Time.Sub(start))
	}
	if s := clock.TakeSleeps(); len(s) != 0 {
		t.Fatalf("catch-up event slept %v", s)
	}
	if got := tk.Coalesced(); got != 2 {
		t.Fatalf("coalesced %d, want 2 (slot 200 is served late at 450, slots 300 and 400 skipped)", got)
	}
	if ev := wait(); !ev.Time.Equal(start.Add(500 * time.Millisecond)) {
		t.Fatalf("next event at %v, want 500ms", ev.Time.Sub(start))
	}
	if s := clock.TakeSleeps(); len(s) != 1 || s[0] != 50*time.Millisecond {
		t.Fatalf("slept %v, want [50ms]", s)
	}
}

func TestTickerKindsCloseAndCancel(t *testing.T) {
	iv := NewInterval(time.Hour)
	ev, err := iv.Wait(context.Background())
	if err != nil || ev.Kind != "interval" {
		t.Fatalf("first interval event %+v, %v; want one at once", ev, err)
	}
	// The next one is an hour away: Close must unblock it.
	capturetest.CloseUnblocks[Event](t, iv, ErrTriggerClosed)

	c := NewContinuous(0.001)
	defer c.Close()
	if _, err := c.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait with an expiring context: %v", err)
	}
}

func TestTriggerConstructorsRejectBadRates(t *testing.T) {
	for name, f := range map[string]func(){
		"fps 0":      func() { NewContinuous(0) },
		"fps -1":     func() { NewContinuous(-1) },
		"interval 0": func() { NewInterval(0) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

// chanTrigger is a Trigger fed by the test.
type chanTrigger struct {
	ch        chan Event
	done      chan struct{}
	closeOnce sync.Once
	closes    int
	mu        sync.Mutex
}

func newChanTrigger() *chanTrigger {
	return &chanTrigger{ch: make(chan Event), done: make(chan struct{})}
}

func (c *chanTrigger) Wait(ctx context.Context) (Event, error) {
	select {
	case ev := <-c.ch:
		return ev, nil
	case <-ctx.Done():
		return Event{}, ctx.Err()
	case <-c.done:
		return Event{}, ErrTriggerClosed
	}
}

func (c *chanTrigger) Close() error {
	c.mu.Lock()
	c.closes++
	c.mu.Unlock()
	c.closeOnce.Do(func() { close(c.done) })
	return nil
}

// fire delivers ev to a waiting Wait, failing the test if nobody takes it.
// It may run on any goroutine.
func (c *chanTrigger) fire(t *testing.T, ev Event) bool {
	t.Helper()
	select {
	case c.ch <- ev:
		return true
	case <-time.After(10 * time.Second):
		t.Errorf("nobody waited for event %+v", ev)
		return false
	}
}

func TestMerge(t *testing.T) {
	a, b := newChanTrigger(), newChanTrigger()
	m := Merge(a, b)
	if Merge(a) != Trigger(a) {
		t.Fatal("Merge of one trigger should be that trigger")
	}
	ctx := context.Background()
	go a.fire(t, Event{Kind: "a"})
	if ev, err := m.Wait(ctx); err != nil || ev.Kind != "a" {
		t.Fatalf("got %+v, %v; want a's event", ev, err)
	}
	go b.fire(t, Event{Kind: "b"})
	if ev, err := m.Wait(ctx); err != nil || ev.Kind != "b" {
		t.Fatalf("got %+v, %v; want b's event", ev, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.Wait(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Wait: %v", err)
	}
	// Close unblocks a pending Wait and closes both.
	errc := make(chan error, 1)
	go func() {
		_, err := m.Wait(ctx)
		errc <- err
	}()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, ErrTriggerClosed) {
			t.Fatalf("Wait after Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not unblock Wait")
	}
	m.Close()
	for name, c := range map[string]*chanTrigger{"a": a, "b": b} {
		if c.closes != 1 {
			t.Errorf("trigger %s closed %d times, want 1", name, c.closes)
		}
	}
}

func TestMergeReportsErrorsAndCoalescedCounts(t *testing.T) {
	a := newChanTrigger()
	tk, clock := trigTestFake("continuous", time.Second)
	m := Merge(a, tk)
	defer m.Close()
	// Make the ticker skip a slot: 1 s is served at 2.5 s, 2 s is skipped.
	if _, err := tk.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2500 * time.Millisecond)
	if _, err := tk.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := m.(Coalescer).Coalesced(); got != 1 {
		t.Fatalf("merged coalesced count %d, want 1", got)
	}
	a.Close()
	// The fake ticker fires at every Wait, so read until a's error shows.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := m.Wait(context.Background())
		if errors.Is(err, ErrTriggerClosed) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("a's error never came through Merge")
		}
	}
}
