package capture

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// gpioTestPin is a fake line whose edges the test sends one at a time: the
// channel is unbuffered, so a send returns once the trigger took the edge.
func gpioTestPin() *gpiotest.Pin {
	return &gpiotest.Pin{N: "GPIO17", Num: 17, EdgesChan: make(chan gpio.Level)}
}

func gpioTestEdge(t *testing.T, p *gpiotest.Pin, l gpio.Level) {
	t.Helper()
	select {
	case p.EdgesChan <- l:
	case <-time.After(10 * time.Second):
		t.Fatal("the trigger never waited for the edge")
	}
}

func gpioTestWait(t *testing.T, tr Trigger) Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ev, err := tr.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// gpioTestEventually polls cond for up to 10 s.
func gpioTestEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func gpioTestNew(t *testing.T, p *gpiotest.Pin, o GPIOOptions) *GPIOTrigger {
	t.Helper()
	tr, err := NewGPIOTrigger(p, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

func TestGPIODebounceIsALockoutWindow(t *testing.T) {
	p := gpioTestPin()
	clock := &trigTestClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	tr := gpioTestNew(t, p, GPIOOptions{Edge: "rising", Pull: "down", Debounce: 50 * time.Millisecond, Frames: 3, PreTrigger: 2, now: clock.now})
	if p.P != gpio.PullDown {
		t.Fatalf("pull %v, want PullDown set explicitly", p.P)
	}

	gpioTestEdge(t, p, gpio.High)
	ev := gpioTestWait(t, tr)
	if ev.Kind != "gpio" || ev.Frames != 3 || ev.Pre != 2 || ev.Active != nil || !ev.Time.Equal(clock.now()) {
		t.Fatalf("event %+v", ev)
	}
	// Bounces inside the window: counted, dropped.
	for i := range 4 {
		clock.advance(10 * time.Millisecond)
		gpioTestEdge(t, p, gpio.Level(i%2 == 0))
		gpioTestEventually(t, "the bounce to be counted", func() bool { return tr.Stats().Edges == uint64(2+i) })
	}
	if s := tr.Stats(); s.Accepted != 1 || s.Debounced != 4 {
		t.Fatalf("stats %+v, want 1 accepted and 4 debounced", s)
	}
	// The window runs from the accepted edge (at +0), not from the last
	// bounce (at +40 ms): an edge at +50 ms is accepted.
	clock.advance(10 * time.Millisecond)
	gpioTestEdge(t, p, gpio.High)
	ev2 := gpioTestWait(t, tr)
	if got := ev2.Time.Sub(ev.Time); got != 50*time.Millisecond {
		t.Fatalf("second event %v after the first, want 50ms", got)
	}
	if s := tr.Stats(); s != (GPIOStats{Edges: 6, Accepted: 2, Debounced: 4}) {
		t.Fatalf("stats %+v", s)
	}
}

func TestGPIOBothEdgesAndDroppedEvents(t *testing.T) {
	p := gpioTestPin()
	tr := gpioTestNew(t, p, GPIOOptions{Edge: "both", Pull: "none"})
	if p.P != gpio.Float {
		t.Fatalf("pull %v, want Float for none", p.P)
	}
	gpioTestEdge(t, p, gpio.High)
	gpioTestWait(t, tr)
	gpioTestEdge(t, p, gpio.Low)
	if ev := gpioTestWait(t, tr); ev.Frames != 1 {
		t.Fatalf("event %+v, want 1 frame by default", ev)
	}
	// Nobody waits: the first edge is kept, the second dropped, not queued.
	gpioTestEdge(t, p, gpio.High)
	gpioTestEdge(t, p, gpio.Low)
	gpioTestEventually(t, "four accepted edges", func() bool { return tr.Stats().Accepted == 4 })
	if s := tr.Stats(); s.Dropped != 1 {
		t.Fatalf("stats %+v, want 1 dropped", s)
	}
	gpioTestWait(t, tr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if ev, err := tr.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a dropped event came through: %+v, %v", ev, err)
	}
}

func TestGPIOCloseUnblocksWaitAndReleasesThePin(t *testing.T) {
	p := gpioTestPin()
	tr, err := NewGPIOTrigger(p, GPIOOptions{Edge: "falling", Pull: "up", WhileActive: true})
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
		if !errors.Is(err, ErrTriggerClosed) {
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
	case <-time.After(2 * gpioPoll):
	}
	if tr.Active() {
		t.Fatal("Active after Close")
	}
	tr.Close()
	if _, err := tr.Wait(context.Background()); !errors.Is(err, ErrTriggerClosed) {
		t.Fatalf("Wait on a closed trigger: %v", err)
	}
}

func TestGPIOWaitHonoursContext(t *testing.T) {
	tr := gpioTestNew(t, gpioTestPin(), GPIOOptions{})
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
		p := gpioTestPin()
		tr := gpioTestNew(t, p, GPIOOptions{Edge: c.edge, Pull: c.pull, WhileActive: true, ActiveFPS: 7})
		if tr.Active() {
			t.Errorf("%s/%s: active at rest", c.edge, c.pull)
		}
		gpioTestEdge(t, p, c.active) // gpiotest sets the level with the edge
		ev := gpioTestWait(t, tr)
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
		o    GPIOOptions
		want string
	}{
		{GPIOOptions{Edge: "sideways"}, "want rising, falling or both"},
		{GPIOOptions{Pull: "sideways"}, "want up, down or none"},
		{GPIOOptions{Debounce: -1}, "negative"},
		{GPIOOptions{Frames: -1}, "negative"},
		{GPIOOptions{PreTrigger: -1}, "negative"},
		{GPIOOptions{ActiveFPS: -1}, "negative"},
	} {
		_, err := NewGPIOTrigger(gpioTestPin(), c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.o, err, c.want)
		}
		if _, err := OpenGPIO(c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("OpenGPIO %+v: error %v, want %q before touching hardware", c.o, err, c.want)
		}
	}
	// A driver refusing the configuration is reported with the line name.
	_, err := NewGPIOTrigger(&gpiotest.Pin{N: "GPIO4"}, GPIOOptions{})
	if err == nil || !strings.Contains(err.Error(), "GPIO4") {
		t.Fatalf("error %v, want one naming the line", err)
	}
}

func TestOpenGPIOWithoutChips(t *testing.T) {
	chips, err := ListGPIOChips()
	if err != nil {
		t.Fatal(err)
	}
	if len(chips) > 0 {
		t.Skipf("this machine has %d GPIO chips", len(chips))
	}
	for _, o := range []GPIOOptions{{Line: "GPIO17"}, {Chip: "pinctrl-rp1", Offset: 17}} {
		_, err := OpenGPIO(o)
		if err == nil || !strings.Contains(err.Error(), "no GPIO character devices") {
			t.Errorf("OpenGPIO(%+v): %v", o, err)
		}
	}
}
