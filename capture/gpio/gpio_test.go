package gpio

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"framepush/capture"
	"framepush/capture/internal/capturetest"
)

// testPin is a fake line whose edges the test sends one at a time: the
// channel is unbuffered, so a send returns once the trigger took the edge.
func testPin() *gpiotest.Pin {
	return &gpiotest.Pin{N: "GPIO17", Num: 17, EdgesChan: make(chan gpio.Level)}
}

func testEdge(t *testing.T, p *gpiotest.Pin, l gpio.Level) {
	t.Helper()
	select {
	case p.EdgesChan <- l:
	case <-time.After(10 * time.Second):
		t.Fatal("the trigger never waited for the edge")
	}
}

func testWait(t *testing.T, tr capture.Trigger) capture.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ev, err := tr.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// testEventually polls cond for up to 10 s.
func testEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func testNew(t *testing.T, p *gpiotest.Pin, o Options) *Trigger {
	t.Helper()
	tr, err := NewTrigger(p, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

func TestGPIODebounceIsALockoutWindow(t *testing.T) {
	p := testPin()
	clock := capturetest.NewClock()
	tr := testNew(t, p, Options{Edge: "rising", Pull: "down", Debounce: 50 * time.Millisecond, Frames: 3, PreTrigger: 2, now: clock.Now})
	if p.P != gpio.PullDown {
		t.Fatalf("pull %v, want PullDown set explicitly", p.P)
	}

	testEdge(t, p, gpio.High)
	ev := testWait(t, tr)
	if ev.Kind != "gpio" || ev.Frames != 3 || ev.Pre != 2 || ev.Active != nil || !ev.Time.Equal(clock.Now()) {
		t.Fatalf("event %+v", ev)
	}
	// Bounces inside the window: counted, dropped.
	for i := range 4 {
		clock.Advance(10 * time.Millisecond)
		testEdge(t, p, gpio.Level(i%2 == 0))
		testEventually(t, "the bounce to be counted", func() bool { return tr.Stats().Edges == uint64(2+i) })
	}
	if s := tr.Stats(); s.Accepted != 1 || s.Debounced != 4 {
		t.Fatalf("stats %+v, want 1 accepted and 4 debounced", s)
	}
	// The window runs from the accepted edge (at +0), not from the last
	// bounce (at +40 ms): an edge at +50 ms is accepted.
	clock.Advance(10 * time.Millisecond)
	testEdge(t, p, gpio.High)
	ev2 := testWait(t, tr)
	if got := ev2.Time.Sub(ev.Time); got != 50*time.Millisecond {
		t.Fatalf("second event %v after the first, want 50ms", got)
	}
	if s := tr.Stats(); s != (Stats{Edges: 6, Accepted: 2, Debounced: 4}) {
		t.Fatalf("stats %+v", s)
	}
}

func TestGPIOBothEdgesAndDroppedEvents(t *testing.T) {
	p := testPin()
	tr := testNew(t, p, Options{Edge: "both", Pull: "none"})
	if p.P != gpio.Float {
		t.Fatalf("pull %v, want Float for none", p.P)
	}
	testEdge(t, p, gpio.High)
	testWait(t, tr)
	testEdge(t, p, gpio.Low)
	if ev := testWait(t, tr); ev.Frames != 1 {
		t.Fatalf("event %+v, want 1 frame by default", ev)
	}
	// Nobody waits: the second edge replaces the first, nothing is queued.
	testEdge(t, p, gpio.High)
	testEdge(t, p, gpio.Low)
	testEventually(t, "four accepted edges", func() bool { return tr.Stats().Accepted == 4 })
	if s := tr.Stats(); s.Dropped != 1 {
		t.Fatalf("stats %+v, want 1 dropped", s)
	}
	testWait(t, tr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if ev, err := tr.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a dropped event came through: %+v, %v", ev, err)
	}
}

// Edges that nobody has taken merge into the newest, the rule the capture
// loop applies too (the trigger used to keep the oldest).
func TestGPIOPendingEdgeIsTheNewest(t *testing.T) {
	p := testPin()
	clock := capturetest.NewClock()
	tr := testNew(t, p, Options{Edge: "rising", Pull: "down", now: clock.Now})
	first := clock.Now()
	testEdge(t, p, gpio.High)
	testEventually(t, "the first edge", func() bool { return tr.Stats().Accepted == 1 })
	clock.Advance(time.Second)
	testEdge(t, p, gpio.High)
	testEventually(t, "the second edge", func() bool { return tr.Stats().Accepted == 2 })
	ev := testWait(t, tr)
	if !ev.Time.Equal(first.Add(time.Second)) {
		t.Fatalf("delivered the edge of %v, want the newest (%v)", ev.Time, first.Add(time.Second))
	}
	if s := tr.Stats(); s.Dropped != 1 || tr.Coalesced() != 1 {
		t.Fatalf("stats %+v, want the older edge counted as dropped", s)
	}
}

func TestGPIOCloseUnblocksWaitAndReleasesThePin(t *testing.T) {
	p := testPin()
	tr, err := NewTrigger(p, Options{Edge: "falling", Pull: "up", WhileActive: true})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := tr.Wait(context.Background())
		errc <- err
	}()
	closed := make(chan struct{})
	go func() {
		tr.Close()
		close(closed)
	}()
	select {
	case err := <-errc:
		if !errors.Is(err, capture.ErrTriggerClosed) {
			t.Fatalf("Wait after Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not unblock Wait")
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	// The edge goroutine is gone: nobody takes an edge any more.
	select {
	case p.EdgesChan <- gpio.Low:
		t.Fatal("an edge was taken after Close")
	case <-time.After(2 * pollInterval):
	}
	if tr.Active() {
		t.Fatal("Active after Close")
	}
	tr.Close()
	if _, err := tr.Wait(context.Background()); !errors.Is(err, capture.ErrTriggerClosed) {
		t.Fatalf("Wait on a closed trigger: %v", err)
	}
}

func TestGPIOWaitHonoursContext(t *testing.T) {
	tr := testNew(t, testPin(), Options{})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := tr.Wait(ctx)
		errc <- err
	}()
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancel did not unblock Wait")
	}
}

func TestGPIOWhileActiveFollowsTheLevel(t *testing.T) {
	for _, c := range []struct {
		edge, pull      string
		active, resting gpio.Level
	}{
		{"rising", "down", gpio.High, gpio.Low},
		{"falling", "up", gpio.Low, gpio.High},
		{"both", "up", gpio.Low, gpio.High},
		{"both", "down", gpio.High, gpio.Low},
	} {
		p := testPin()
		tr := testNew(t, p, Options{Edge: c.edge, Pull: c.pull, WhileActive: true, ActiveFPS: 7})
		if tr.Active() {
			t.Errorf("%s/%s: active at rest", c.edge, c.pull)
		}
		testEdge(t, p, c.active) // gpiotest sets the level with the edge
		ev := testWait(t, tr)
		if ev.Active == nil || ev.ActiveFPS != 7 {
			t.Fatalf("%s/%s: event %+v lacks Active or ActiveFPS", c.edge, c.pull, ev)
		}
		if !ev.Active() {
			t.Errorf("%s/%s: not active at level %v", c.edge, c.pull, c.active)
		}
		p.Out(c.resting)
		if ev.Active() {
			t.Errorf("%s/%s: still active at level %v", c.edge, c.pull, c.resting)
		}
		tr.Close()
	}
}

func TestGPIOOptionErrors(t *testing.T) {
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{Edge: "sideways"}, "want rising, falling or both"},
		{Options{Pull: "sideways"}, "want up, down or none"},
		{Options{Debounce: -1}, "negative"},
		{Options{Frames: -1}, "negative"},
		{Options{PreTrigger: -1}, "negative"},
		{Options{ActiveFPS: -1}, "negative"},
	} {
		_, err := NewTrigger(testPin(), c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.o, err, c.want)
		}
		if _, err := Open(c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("OpenGPIO %+v: error %v, want %q before touching hardware", c.o, err, c.want)
		}
	}
	// A driver refusing the configuration is reported with the line name.
	_, err := NewTrigger(&gpiotest.Pin{N: "GPIO4"}, Options{})
	if err == nil || !strings.Contains(err.Error(), "GPIO4") {
		t.Fatalf("error %v, want one naming the line", err)
	}
}

func TestOpenGPIOWithoutChips(t *testing.T) {
	chips, err := ListChips()
	if err != nil {
		t.Fatal(err)
	}
	if len(chips) > 0 {
		t.Skipf("this machine has %d GPIO chips", len(chips))
	}
	for _, o := range []Options{{Line: "GPIO17"}, {Chip: "pinctrl-rp1", Offset: 17}} {
		_, err := Open(o)
		if err == nil || !strings.Contains(err.Error(), "no GPIO character devices") {
			t.Errorf("OpenGPIO(%+v): %v", o, err)
		}
	}
}
