package capture

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"framepush/frame"
	"framepush/internal/backoff"
	"framepush/internal/testutil"
)

// reopenTestClock is a fake clock whose Sleep only moves time on.
type reopenTestClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
	// onSleep, when set, runs at each sleep (e.g. to cancel a context).
	onSleep func(n int)
}

func (c *reopenTestClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *reopenTestClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	n, hook := len(c.sleeps), c.onSleep
	c.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	return ctx.Err()
}

func (c *reopenTestClock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

// reopenTestSource yields frames, then fails with err.
type reopenTestSource struct {
	id     int
	frames int
	err    error
	taken  int
	closes int
}

func (s *reopenTestSource) Capture(ctx context.Context) (frame.Frame, error) {
	if s.closes > 0 {
		return frame.Frame{}, errors.New("capture on a closed test source")
	}
	if s.taken < s.frames {
		s.taken++
		return frame.Frame{Data: []byte(fmt.Sprintf("src%d-frame%d", s.id, s.taken)), Seq: uint64(s.taken)}, nil
	}
	return frame.Frame{}, s.err
}

func (s *reopenTestSource) Close() error {
	s.closes++
	return nil
}

// reopenTestFactory plays a script: each entry is a source to hand out or
// an error to fail the open with.
type reopenTestFactory struct {
	script []any
	calls  int
	opened []*reopenTestSource
}

func (f *reopenTestFactory) open(context.Context) (Source, error) {
	if f.calls >= len(f.script) {
		f.calls++
		return nil, &fs.PathError{Op: "open", Path: "/dev/video0", Err: syscall.ENOENT}
	}
	item := f.script[f.calls]
	f.calls++
	switch v := item.(type) {
	case *reopenTestSource:
		f.opened = append(f.opened, v)
		return v, nil
	case error:
		return nil, v
	}
	panic("bad script")
}

func reopenTestNew(t *testing.T, f *reopenTestFactory, opts ReopenOptions) (*Reopener, *reopenTestClock, *reopenTestLog) {
	t.Helper()
	clock := &reopenTestClock{now: time.Unix(1700000000, 0)}
	logs := &reopenTestLog{}
	opts.Now, opts.Sleep = clock.Now, clock.Sleep
	if opts.Rand == nil {
		opts.Rand = func() float64 { return 0.5 }
	}
	if opts.Name == "" {
		opts.Name = "v4l2:/dev/video0"
	}
	r := NewReopener(f.open, opts, logs.logger())
	t.Cleanup(func() { r.Close() })
	return r, clock, logs
}

// reopenTestLog collects the Reopener's log lines.
type reopenTestLog struct{ testutil.Buffer }

func (l *reopenTestLog) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

var reopenTestPolicy = backoff.Policy{Initial: time.Second, Max: 8 * time.Second, Multiplier: 2}

func reopenTestGone(what string) error { return fmt.Errorf("test: %s: %w", what, ErrDeviceGone) }

func TestReopenerRecoversAndKeepsSequence(t *testing.T) {
	first := &reopenTestSource{id: 1, frames: 2, err: reopenTestGone("unplugged")}
	second := &reopenTestSource{id: 2, frames: 2, err: errors.New("end")}
	f := &reopenTestFactory{script: []any{first, &fs.PathError{Op: "open", Path: "/dev/video0", Err: syscall.ENOENT}, second}}
	r, clock, logs := reopenTestNew(t, f, ReopenOptions{Backoff: reopenTestPolicy, GiveUp: time.Minute})

	var data []string
	for i := 1; i <= 4; i++ {
		fr, err := r.Capture(context.Background())
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if fr.Seq != uint64(i) {
			t.Fatalf("frame %d has Seq %d: sequence must continue across reopens", i, fr.Seq)
		}
		data = append(data, string(fr.Data))
	}
	if got := strings.Join(data, " "); got != "src1-frame1 src1-frame2 src2-frame1 src2-frame2" {
		t.Fatalf("frames %s", got)
	}
	if first.closes != 1 {
		t.Fatalf("lost source closed %d times, want once", first.closes)
	}
	// Lost → wait 0.5 s (half of 1 s) → open fails → wait 1 s → open works.
	if got := clock.Sleeps(); len(got) != 2 || got[0] != 500*time.Millisecond || got[1] != time.Second {
		t.Fatalf("sleeps %v, want [500ms 1s]", got)
	}
	st := r.Stats()
	if st.Opens != 2 || st.Reopens != 1 || st.Failures != 2 || st.Down || !strings.Contains(st.LastError, "no such file") {
		t.Fatalf("stats %+v", st)
	}
	out := logs.String()
	for _, w := range []string{"capture device lost, will retry", "unplugged", "capture device open failed, will retry",
		"capture device reopened", "down_for=1.5s", "capture device recovered"} {
		if !strings.Contains(out, w) {
			t.Errorf("log lacks %q:\n%s", w, out)
		}
	}

	// A non-device error passes through and keeps the source.
	if _, err := r.Capture(context.Background()); err == nil || err.Error() != "end" {
		t.Fatalf("got %v, want the source's own error", err)
	}
	if second.closes != 0 || f.calls != 3 {
		t.Fatalf("source closed %d times, %d opens after a non-device error", second.closes, f.calls)
	}
}

func TestReopenerGivesUp(t *testing.T) {
	f := &reopenTestFactory{} // every open fails with ENOENT
	r, clock, logs := reopenTestNew(t, f, ReopenOptions{Backoff: reopenTestPolicy, GiveUp: 20 * time.Second, Rand: func() float64 { return 1 }})
	_, err := r.Capture(context.Background())
	if !errors.Is(err, ErrGaveUp) || !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("got %v, want ErrGaveUp wrapping the last error", err)
	}
	for _, w := range []string{"v4l2:/dev/video0 unusable for", "limit 20s", "no such file"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q: %v", w, err)
		}
	}
	// Delays 1, 2, 4, 8, 8 s (capped): the sixth failed open comes 23 s
	// into the outage, past the 20 s limit.
	want := []time.Duration{1, 2, 4, 8, 8}
	got := clock.Sleeps()
	if len(got) != len(want) {
		t.Fatalf("sleeps %v, want %v s", got, want)
	}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("sleeps %v, want %v s", got, want)
		}
	}
	if f.calls != 6 || r.Stats().Failures != 6 || !r.Stats().Down {
		t.Fatalf("%d opens, stats %+v", f.calls, r.Stats())
	}
	if !strings.Contains(logs.String(), "giving up on the capture device") {
		t.Fatalf("give-up not logged:\n%s", logs)
	}
}

func TestReopenerNeverGivesUpWithZeroAndNeverSpins(t *testing.T) {
	script := make([]any, 200)
	for i := range script {
		script[i] = syscall.EIO
	}
	ok := &reopenTestSource{id: 9, frames: 1}
	script = append(script, ok)
	f := &reopenTestFactory{script: script}
	// Rand 0 would make every jittered delay zero: the floor must hold.
	r, clock, _ := reopenTestNew(t, f, ReopenOptions{Backoff: reopenTestPolicy, Rand: func() float64 { return 0 }})
	fr, err := r.Capture(context.Background())
	if err != nil || string(fr.Data) != "src9-frame1" {
		t.Fatalf("got %q, %v", fr.Data, err)
	}
	sleeps := clock.Sleeps()
	if len(sleeps) != 200 {
		t.Fatalf("%d sleeps for 200 failures", len(sleeps))
	}
	for _, d := range sleeps {
		if d < 100*time.Millisecond {
			t.Fatalf("slept %v: below the floor of a tenth of the initial delay", d)
		}
	}
}

func TestReopenerOutageClockRestartsAfterRecovery(t *testing.T) {
	a := &reopenTestSource{id: 1, frames: 1, err: reopenTestGone("stall")}
	b := &reopenTestSource{id: 2, frames: 1, err: reopenTestGone("stall")}
	c := &reopenTestSource{id: 3, frames: 1}
	f := &reopenTestFactory{script: []any{a, syscall.EIO, b, c}}
	// Delays are 8 s (Rand 1, Initial = Max = 8 s). The first outage
	// fails at 0 s and 8 s and ends at 16 s; the second starts at 16 s.
	// Counted from the first failure it would be past the 10 s limit at
	// once; counted from its own start it is not.
	r, clock, _ := reopenTestNew(t, f, ReopenOptions{Backoff: backoff.Policy{Initial: 8 * time.Second, Max: 8 * time.Second, Multiplier: 2},
		GiveUp: 10 * time.Second, Rand: func() float64 { return 1 }})
	for i := 0; i < 3; i++ {
		if _, err := r.Capture(context.Background()); err != nil {
			t.Fatalf("frame %d: %v", i+1, err)
		}
	}
	if st := r.Stats(); st.Reopens != 2 || st.Failures != 3 || len(clock.Sleeps()) != 3 {
		t.Fatalf("stats %+v, sleeps %v", st, clock.Sleeps())
	}
}

func TestReopenerOpenThatNeverDeliversCountsAsDown(t *testing.T) {
	// The camera opens every time but never yields a frame: the outage is
	// continuous although each open succeeds.
	var script []any
	for i := 0; i < 20; i++ {
		script = append(script, &reopenTestSource{id: i, err: reopenTestGone("no frame for 5s")})
	}
	f := &reopenTestFactory{script: script}
	r, _, _ := reopenTestNew(t, f, ReopenOptions{Backoff: reopenTestPolicy, GiveUp: 10 * time.Second, Rand: func() float64 { return 1 }})
	_, err := r.Capture(context.Background())
	if !errors.Is(err, ErrGaveUp) || !errors.Is(err, ErrDeviceGone) {
		t.Fatalf("got %v", err)
	}
	for i, s := range f.opened {
		if s.closes != 1 {
			t.Fatalf("source %d closed %d times", i, s.closes)
		}
	}
}

func TestReopenerContextEndsTheWait(t *testing.T) {
	f := &reopenTestFactory{}
	r, clock, _ := reopenTestNew(t, f, ReopenOptions{Backoff: reopenTestPolicy})
	ctx, cancel := context.WithCancel(context.Background())
	clock.onSleep = func(n int) {
		if n == 3 {
			cancel()
		}
	}
	if _, err := r.Capture(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	if f.calls != 3 {
		t.Fatalf("%d opens after the context ended at the third wait", f.calls)
	}
}

func TestReopenerClose(t *testing.T) {
	src := &reopenTestSource{id: 1, frames: 5}
	f := &reopenTestFactory{script: []any{src}}
	r, _, _ := reopenTestNew(t, f, ReopenOptions{Backoff: reopenTestPolicy})
	if _, err := r.Capture(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if src.closes != 1 {
		t.Fatalf("source closed %d times", src.closes)
	}
	if _, err := r.Capture(context.Background()); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Capture after Close: %v", err)
	}
	if f.calls != 1 {
		t.Fatal("reopened after Close")
	}
}

// Open surfaces a bad device at start; a later Capture still retries, and
// an Open that works is the source Capture then uses.
func TestReopenerOpenEarly(t *testing.T) {
	ctx := context.Background()
	good := &reopenTestSource{id: 1, frames: 3}
	f := &reopenTestFactory{script: []any{&fs.PathError{Op: "open", Path: "/dev/video0", Err: syscall.ENOENT}, good}}
	r, clock, _ := reopenTestNew(t, f, ReopenOptions{Backoff: reopenTestPolicy})
	err := r.Open(ctx)
	if err == nil || !strings.Contains(err.Error(), "/dev/video0") {
		t.Fatalf("Open with a missing device: %v", err)
	}
	if st := r.Stats(); st.Failures != 1 || !st.Down || st.Opens != 0 {
		t.Fatalf("stats after a failed Open: %+v", st)
	}
	if len(clock.Sleeps()) != 0 {
		t.Fatalf("Open slept %v; it must return at once", clock.Sleeps())
	}
	if err := r.Open(ctx); err != nil {
		t.Fatalf("second Open: %v", err)
	}
	if err := r.Open(ctx); err != nil || f.calls != 2 {
		t.Fatalf("Open of an open source: %v, factory called %d times", err, f.calls)
	}
	fr, err := r.Capture(ctx)
	if err != nil || string(fr.Data) != "src1-frame1" || fr.Seq != 1 {
		t.Fatalf("Capture after Open: %q %d %v", fr.Data, fr.Seq, err)
	}
	if st := r.Stats(); st.Down || st.Opens != 1 {
		t.Fatalf("stats after recovery: %+v", st)
	}
	r.Close()
	if err := r.Open(ctx); err == nil {
		t.Fatal("Open after Close succeeded")
	}
}

// A loss is one log line, and it tells the delay the Reopener then waits
// (the only restart: sources do not retry on their own).
func TestReopenerLogsEachLossOnceWithItsDelay(t *testing.T) {
	first := &reopenTestSource{id: 1, frames: 1, err: reopenTestGone("unplugged")}
	second := &reopenTestSource{id: 2, frames: 1, err: errors.New("end")}
	f := &reopenTestFactory{script: []any{first, second}}
	r, clock, logs := reopenTestNew(t, f, ReopenOptions{Backoff: reopenTestPolicy})
	for i := 0; i < 2; i++ {
		if _, err := r.Capture(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if got := clock.Sleeps(); len(got) != 1 || got[0] != 500*time.Millisecond {
		t.Fatalf("sleeps %v, want [500ms]", got)
	}
	var lines []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "unplugged") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 || !strings.Contains(lines[0], `msg="capture device lost, will retry"`) ||
		!strings.Contains(lines[0], "retry_in=500ms") || !strings.Contains(lines[0], "level=WARN") {
		t.Fatalf("lines about the loss %q, want one warning with retry_in=500ms", lines)
	}
	if strings.Contains(logs.String(), "device device") {
		t.Fatalf("log reads \"device device\":\n%s", logs)
	}
}
