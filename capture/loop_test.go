package capture

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"framepush/frame"
	"framepush/internal/testutil"
)

// loopTestSource is a source of small JPEG frames (the test pattern lives
// in a package that imports this one): it counts captures and can fail or
// block them on the test's say.
type loopTestSource struct {
	jpeg     []byte
	seq      uint64
	captures atomic.Uint64
	// hook runs before each capture (Loop's goroutine); an error fails it.
	hook func(ctx context.Context, n uint64) error
}

func loopTestNewSource(t *testing.T) *loopTestSource {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, image.NewGray(image.Rect(0, 0, 64, 48)), nil); err != nil {
		t.Fatal(err)
	}
	return &loopTestSource{jpeg: b.Bytes()}
}

func (s *loopTestSource) Capture(ctx context.Context) (frame.Frame, error) {
	n := s.captures.Add(1)
	if s.hook != nil {
		if err := s.hook(ctx, n); err != nil {
			return frame.Frame{}, err
		}
	}
	if err := ctx.Err(); err != nil {
		return frame.Frame{}, err
	}
	s.seq++
	return frame.Frame{Data: bytes.Clone(s.jpeg), Format: frame.JPEG, Seq: s.seq, Time: time.Now(), Source: "testpattern:loop"}, nil
}

func (s *loopTestSource) Close() error { return nil }

// loopTestSink collects emitted frames.
type loopTestSink struct {
	mu     sync.Mutex
	frames []frame.Frame
}

func (k *loopTestSink) emit(f frame.Frame) {
	k.mu.Lock()
	k.frames = append(k.frames, f)
	k.mu.Unlock()
}

func (k *loopTestSink) get() []frame.Frame {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]frame.Frame(nil), k.frames...)
}

// waitFor polls until at least n frames are in.
func (k *loopTestSink) waitFor(t *testing.T, n int) []frame.Frame {
	t.Helper()
	loopTestEventually(t, fmt.Sprintf("%d frames", n), func() bool { return len(k.get()) >= n })
	return k.get()
}

// loopTestRun starts a Looper and returns a stop func that cancels it and
// returns Run's error.
func loopTestRun(t *testing.T, src Source, trig Trigger, o LoopOptions) (*Looper, *loopTestSink, func() error) {
	t.Helper()
	sink := &loopTestSink{}
	l := NewLooper(src, trig, o, sink.emit)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- l.Run(ctx) }()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-errc:
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return after cancel")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return l, sink, stop
}

// loopTestCheckOrder asserts that frames are in capture order without
// duplicates and decode as JPEG.
func loopTestCheckOrder(t *testing.T, frames []frame.Frame) {
	t.Helper()
	for i, f := range frames {
		if i > 0 && f.Seq <= frames[i-1].Seq {
			t.Fatalf("frame %d has seq %d after %d: not in capture order or duplicated", i, f.Seq, frames[i-1].Seq)
		}
		if _, err := jpeg.Decode(bytes.NewReader(f.Data)); err != nil {
			t.Fatalf("frame %d (seq %d) does not decode: %v", i, f.Seq, err)
		}
	}
}

func TestLoopCapturesFramesPerEvent(t *testing.T) {
	src := loopTestNewSource(t)
	trig := newChanTrigger()
	l, sink, stop := loopTestRun(t, src, trig, LoopOptions{})

	trig.fire(t, Event{Kind: "gpio", Frames: 3})
	sink.waitFor(t, 3)
	trig.fire(t, Event{Kind: "signal"}) // Frames 0 means 1
	sink.waitFor(t, 4)
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v, want context.Canceled", err)
	}
	frames := sink.get()
	if len(frames) != 4 {
		t.Fatalf("%d frames, want 4", len(frames))
	}
	loopTestCheckOrder(t, frames)
	for i, want := range []frame.TriggerKind{"gpio", "gpio", "gpio", "signal"} {
		if frames[i].Trigger != want || frames[i].Seq != uint64(i+1) {
			t.Errorf("frame %d: trigger %q seq %d, want %q seq %d", i, frames[i].Trigger, frames[i].Seq, want, i+1)
		}
	}
	if s := l.Stats(); s != (LoopStats{Events: 2, Frames: 4}) {
		t.Fatalf("stats %+v", s)
	}
}

func TestLoopPreTriggerFrames(t *testing.T) {
	src := loopTestNewSource(t)
	trig := newChanTrigger()
	l, sink, _ := loopTestRun(t, src, trig, LoopOptions{PreTrigger: 3, PreTriggerFPS: 200})

	// Let the ring fill and overflow.
	loopTestEventually(t, "ring captures", func() bool { return src.captures.Load() >= 6 })
	trig.fire(t, Event{Kind: "gpio", Frames: 2, Pre: 3})
	frames := sink.waitFor(t, 5)
	for i, want := range []frame.TriggerKind{"pre-trigger", "pre-trigger", "pre-trigger", "gpio", "gpio"} {
		if frames[i].Trigger != want {
			t.Fatalf("frame %d is %q, want %q", i, frames[i].Trigger, want)
		}
	}
	loopTestCheckOrder(t, frames)
	// The pre-trigger frames are the three newest from before the event.
	if first := frames[3].Seq; frames[0].Seq != first-3 || frames[2].Seq != first-1 {
		t.Fatalf("pre-trigger seqs %d..%d before event seq %d: not the ring's newest", frames[0].Seq, frames[2].Seq, first)
	}
	if frames[0].Seq < 4 {
		t.Fatalf("pre-trigger frame seq %d: older than the ring holds", frames[0].Seq)
	}
	last := frames[4].Seq

	// served waits for a frame of kind newer than seq and returns its seq.
	served := func(kind frame.TriggerKind, after uint64) uint64 {
		t.Helper()
		var got uint64
		loopTestEventually(t, string(kind)+" frame", func() bool {
			for _, f := range sink.get() {
				if f.Trigger == kind && f.Seq > after {
					got = f.Seq
					return true
				}
			}
			return false
		})
		return got
	}
	// ringed waits for a ring capture after the frame with seq (every
	// capture succeeds, so seqs count captures).
	ringed := func(seq uint64) {
		t.Helper()
		loopTestEventually(t, "a ring capture", func() bool { return src.captures.Load() > seq })
	}

	// The ring was emptied: the next event gets only frames taken after
	// the previous one's, however many it asks for.
	ringed(last)
	trig.fire(t, Event{Kind: "gpio", Frames: 1, Pre: 10})
	s2 := served("gpio", last)
	// An event that wants no pre-trigger frames still empties the ring.
	ringed(s2)
	trig.fire(t, Event{Kind: "signal", Frames: 1})
	s3 := served("signal", s2)
	ringed(s3)
	trig.fire(t, Event{Kind: "gpio", Frames: 1, Pre: 1})
	served("gpio", s3)

	frames = sink.get()
	loopTestCheckOrder(t, frames)
	var kinds []frame.TriggerKind
	for _, f := range frames[5:] {
		kinds = append(kinds, f.Trigger)
	}
	// Event 2: 1 to 3 pre frames + 1; event 3: none + 1; event 4: 1 + 1.
	n := len(kinds)
	if n < 5 || n > 7 || kinds[n-4] != "gpio" || kinds[n-3] != "signal" || kinds[n-2] != "pre-trigger" || kinds[n-1] != "gpio" {
		t.Fatalf("frames after the first event: %v", kinds)
	}
	for _, k := range kinds[:n-4] {
		if k != "pre-trigger" {
			t.Fatalf("frames after the first event: %v", kinds)
		}
	}
	s := l.Stats()
	if s.PreFrames != uint64(3+n-4+1) || s.Frames != uint64(len(frames)) {
		t.Fatalf("stats %+v for %d frames, %v", s, len(frames), kinds)
	}
}

func TestLoopWhileActive(t *testing.T) {
	src := loopTestNewSource(t)
	trig := newChanTrigger()
	l, sink, _ := loopTestRun(t, src, trig, LoopOptions{ActiveFPS: 1})

	var active atomic.Bool
	active.Store(true)
	sawInactive := make(chan struct{})
	var once sync.Once
	isActive := func() bool {
		if active.Load() {
			return true
		}
		once.Do(func() { close(sawInactive) })
		return false
	}
	// Event.ActiveFPS overrides the loop's slow default rate.
	trig.fire(t, Event{Time: time.Now(), Kind: "gpio", Frames: 1, Active: isActive, ActiveFPS: 500})
	sink.waitFor(t, 4)
	// An edge during the active period belongs to it: coalesced, not served.
	trig.fire(t, Event{Time: time.Now(), Kind: "bounce", Frames: 1})
	active.Store(false)
	select {
	case <-sawInactive:
	case <-time.After(10 * time.Second):
		t.Fatal("Loop never checked Active again")
	}
	trig.fire(t, Event{Time: time.Now(), Kind: "signal", Frames: 1})
	loopTestEventually(t, "the signal frame", func() bool {
		fs := sink.get()
		return fs[len(fs)-1].Trigger == "signal"
	})
	frames := sink.get()
	loopTestCheckOrder(t, frames)
	for i, f := range frames[:len(frames)-1] {
		if f.Trigger != "gpio" {
			t.Fatalf("frame %d is %q, want gpio frames then one signal frame", i, f.Trigger)
		}
	}
	if s := l.Stats(); s.Events != 2 || s.Coalesced != 1 {
		t.Fatalf("stats %+v, want 2 events and the bounce coalesced", s)
	}
}

func TestLoopCancelIsPrompt(t *testing.T) {
	// Idle, with the pre-trigger ring running.
	src := loopTestNewSource(t)
	_, _, stop := loopTestRun(t, src, newChanTrigger(), LoopOptions{PreTrigger: 2, PreTriggerFPS: 0.01})
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("idle Run returned %v", err)
	}

	// In an endless active period at a slow rate.
	src = loopTestNewSource(t)
	trig := newChanTrigger()
	_, sink, stop := loopTestRun(t, src, trig, LoopOptions{ActiveFPS: 0.01})
	trig.fire(t, Event{Kind: "gpio", Active: func() bool { return true }})
	sink.waitFor(t, 1)
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("active Run returned %v", err)
	}

	// Blocked in a capture.
	src = loopTestNewSource(t)
	entered := make(chan struct{})
	src.hook = func(ctx context.Context, n uint64) error {
		close(entered)
		<-ctx.Done()
		return ctx.Err()
	}
	trig = newChanTrigger()
	_, _, stop = loopTestRun(t, src, trig, LoopOptions{})
	trig.fire(t, Event{Kind: "gpio"})
	<-entered
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("capturing Run returned %v", err)
	}
}

func TestLoopContinuousCoalescesWhileCaptureIsSlow(t *testing.T) {
	src := loopTestNewSource(t)
	release := make(chan struct{})
	src.hook = func(ctx context.Context, n uint64) error {
		if n == 1 {
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	trig := NewContinuous(1000)
	defer trig.Close()
	l, sink, stop := loopTestRun(t, src, trig, LoopOptions{})
	// Ticks keep coming while the first capture hangs; they must collapse.
	loopTestEventually(t, "coalesced ticks", func() bool { return l.Stats().Coalesced >= 5 })
	close(release)
	sink.waitFor(t, 3)
	stop()
	s := l.Stats()
	if s.Frames != s.Events && s.Frames+1 != s.Events { // the last may have been cut short by stop
		t.Fatalf("stats %+v: one frame per event expected", s)
	}
	// Every tick is an event or coalesced; the ~N ticks of the hang
	// turned into at most one pending event, not a burst.
	if s.Coalesced < 5 {
		t.Fatalf("stats %+v", s)
	}
	for _, f := range sink.get() {
		if f.Trigger != "continuous" {
			t.Fatalf("frame trigger %q", f.Trigger)
		}
	}
}

func TestLoopErrors(t *testing.T) {
	t.Run("trigger", func(t *testing.T) {
		trig := newChanTrigger()
		trig.Close()
		err := Loop(context.Background(), loopTestNewSource(t), trig, LoopOptions{}, func(frame.Frame) {})
		if !errors.Is(err, ErrTriggerClosed) {
			t.Fatalf("Loop returned %v", err)
		}
	})
	t.Run("transient", func(t *testing.T) {
		src := loopTestNewSource(t)
		flaky := errors.New("flaky")
		src.hook = func(ctx context.Context, n uint64) error {
			if n == 2 {
				return flaky
			}
			return nil
		}
		trig := newChanTrigger()
		l, sink, _ := loopTestRun(t, src, trig, LoopOptions{})
		trig.fire(t, Event{Kind: "gpio", Frames: 3}) // frame 2 fails: the event is abandoned
		loopTestEventually(t, "the failure", func() bool { return l.Stats().CaptureErrors == 1 })
		trig.fire(t, Event{Kind: "gpio", Frames: 2})
		frames := sink.waitFor(t, 3)
		if len(frames) != 3 || frames[0].Seq != 1 || frames[1].Seq != 2 {
			t.Fatalf("frames %d, seqs %d %d", len(frames), frames[0].Seq, frames[1].Seq)
		}
	})
	t.Run("gave up", func(t *testing.T) {
		src := loopTestNewSource(t)
		src.hook = func(context.Context, uint64) error { return fmt.Errorf("camera: %w", ErrGaveUp) }
		trig := newChanTrigger()
		errc := make(chan error, 1)
		go func() { errc <- Loop(context.Background(), src, trig, LoopOptions{}, func(frame.Frame) {}) }()
		trig.fire(t, Event{Kind: "gpio"})
		select {
		case err := <-errc:
			if !errors.Is(err, ErrGaveUp) {
				t.Fatalf("Loop returned %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Loop did not end on ErrGaveUp")
		}
	})
	t.Run("max errors", func(t *testing.T) {
		src := loopTestNewSource(t)
		broken := errors.New("broken")
		src.hook = func(context.Context, uint64) error { return broken }
		trig := newChanTrigger()
		errc := make(chan error, 1)
		go func() {
			errc <- Loop(context.Background(), src, trig, LoopOptions{MaxCaptureErrors: 3}, func(frame.Frame) {})
		}()
		for i := range 3 {
			// One at a time: events coming while one is served collapse.
			trig.fire(t, Event{Kind: "gpio"})
			loopTestEventually(t, "the capture", func() bool { return src.captures.Load() == uint64(i+1) })
		}
		select {
		case err := <-errc:
			if !errors.Is(err, broken) {
				t.Fatalf("Loop returned %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Loop did not end after 3 failures")
		}
	})
	t.Run("twice", func(t *testing.T) {
		l := NewLooper(loopTestNewSource(t), newChanTrigger(), LoopOptions{}, func(frame.Frame) {})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		l.Run(ctx)
		if err := l.Run(ctx); err == nil || errors.Is(err, context.Canceled) {
			t.Fatalf("second Run: %v", err)
		}
	})
}

func TestFrameRing(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	r := newFrameRing(3)
	for i := 1; i <= 5; i++ {
		r.push(frame.Frame{Seq: uint64(i)}, t0.Add(time.Duration(i)*time.Second))
	}
	seqs := func(fs []frame.Frame) []uint64 {
		var s []uint64
		for _, f := range fs {
			s = append(s, f.Seq)
		}
		return s
	}
	if got := seqs(r.take(2, t0)); fmt.Sprint(got) != "[4 5]" {
		t.Fatalf("take(2) = %v, want [4 5]", got)
	}
	if got := r.take(5, t0); len(got) != 0 {
		t.Fatalf("take after take = %v, want nothing", seqs(got))
	}
	for i := 6; i <= 8; i++ {
		r.push(frame.Frame{Seq: uint64(i)}, t0.Add(time.Duration(i)*time.Second))
	}
	if got := seqs(r.take(10, t0.Add(7*time.Second))); fmt.Sprint(got) != "[7 8]" {
		t.Fatalf("take with an age limit = %v, want [7 8]", got)
	}
	z := newFrameRing(0)
	z.push(frame.Frame{Seq: 1}, t0)
	if got := z.take(1, t0); len(got) != 0 {
		t.Fatalf("zero ring kept %v", seqs(got))
	}
}

func loopTestEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, what, 10*time.Second, cond)
}
