package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"sync/atomic"
	"time"

	"framepush/frame"
)

// Defaults for LoopOptions' rates.
const (
	DefaultPreTriggerFPS = 2.0
	DefaultActiveFPS     = 5.0
)

// LoopOptions tunes a Looper.
type LoopOptions struct {
	// PreTrigger is the size K of the ring of frames kept from before an
	// event (motion's pre_capture); 0 turns the ring off. An event asks for
	// up to K of them through Event.Pre.
	PreTrigger int
	// PreTriggerFPS is the rate the ring is filled at while no event is
	// being served; 0 means DefaultPreTriggerFPS. Each fill is a real
	// capture, so this is the camera load while idle.
	PreTriggerFPS float64
	// ActiveFPS is the capture rate while an event's Active returns true,
	// unless the event sets its own; 0 means DefaultActiveFPS.
	ActiveFPS float64
	// MaxCaptureErrors ends Run after that many capture failures in a row
	// (see Looper.Run); 0 never does, which suits a Reopener source since
	// it gives up by itself after ReopenOptions.GiveUp.
	MaxCaptureErrors int
	Logger           *slog.Logger
}

// LoopStats counts a Looper's work.
type LoopStats struct {
	Events        uint64 // trigger events served
	Frames        uint64 // frames emitted, pre-trigger frames included
	PreFrames     uint64 // of which from the pre-trigger ring
	Coalesced     uint64 // events merged into an earlier one (busy loop, skipped ticks, edges during an active period)
	CaptureErrors uint64 // failed captures that did not end the loop
}

// Looper joins a Trigger and a Source into a stream of frames.
type Looper struct {
	src  Source
	trig Trigger
	opts LoopOptions
	emit func(frame.Frame)
	log  *slog.Logger

	started atomic.Bool
	consec  int // capture failures in a row (Run's goroutine only)

	events, frames, preFrames, coalesced, captureErrors atomic.Uint64
}

// NewLooper returns a Looper; Run starts it.
func NewLooper(src Source, trig Trigger, o LoopOptions, emit func(frame.Frame)) *Looper {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if !(o.PreTriggerFPS > 0) {
		o.PreTriggerFPS = DefaultPreTriggerFPS
	}
	if !(o.ActiveFPS > 0) {
		o.ActiveFPS = DefaultActiveFPS
	}
	o.PreTrigger = max(o.PreTrigger, 0)
	return &Looper{src: src, trig: trig, opts: o, emit: emit, log: log}
}

// Loop is NewLooper(src, trig, o, emit).Run(ctx), for callers that need no
// statistics.
func Loop(ctx context.Context, src Source, trig Trigger, o LoopOptions, emit func(frame.Frame)) error {
	return NewLooper(src, trig, o, emit).Run(ctx)
}

// Stats returns the counters so far. It is safe to call while Run runs.
func (l *Looper) Stats() LoopStats {
	s := LoopStats{
		Events:        l.events.Load(),
		Frames:        l.frames.Load(),
		PreFrames:     l.preFrames.Load(),
		Coalesced:     l.coalesced.Load(),
		CaptureErrors: l.captureErrors.Load(),
	}
	if c, ok := l.trig.(Coalescer); ok {
		s.Coalesced += c.Coalesced()
	}
	return s
}

// Run serves trigger events until ctx is done or something fails for good.
//
// A goroutine of its own waits for the trigger, so edges are seen while a
// capture runs; events that come while one is being served collapse into
// one Pending event, the newest (the others counted in Coalesced): a slow
// capture never causes a burst. See Pending for an edge's whole path. For each event Run emits up to Event.Pre of the most recent ring
// frames (Trigger "pre-trigger", oldest first; the ring is then emptied so
// no frame goes out twice), then captures Event.Frames frames (Trigger =
// event kind), each exposed after the event since Source.Capture returns
// no stale frame, then goes on capturing while Event.Active reports true.
// Between events it fills the pre-trigger ring. Only Run's goroutine calls
// src, and emit runs on it too: a slow emit slows capture, not the trigger.
//
// Run returns ctx.Err() when ctx ends, the trigger's error when Wait fails
// (a closed trigger, say), and a capture error wrapping ErrGaveUp or
// ErrExhausted, or the last of MaxCaptureErrors failures in a row. Other
// capture errors (a source without a Reopener reporting ErrDeviceGone, a
// child process restarting) are counted and logged, and the event being
// served is abandoned; the next capture waits for the next event or ring
// tick, so a broken source cannot make Run spin. Run may be called once.
func (l *Looper) Run(ctx context.Context) error {
	if !l.started.CompareAndSwap(false, true) {
		return errors.New("capture: Looper.Run called twice")
	}
	ctx, cancel := context.WithCancel(ctx)
	pending := NewPending()
	errCh := make(chan error, 1)
	waiterDone := make(chan struct{})
	go func() {
		defer close(waiterDone)
		for {
			ev, err := l.trig.Wait(ctx)
			if err != nil {
				if ctx.Err() == nil {
					errCh <- err
				}
				return
			}
			if pending.Put(ev) { // the newest wins, see Pending
				l.coalesced.Add(1)
			}
		}
	}()
	defer func() {
		cancel()
		<-waiterDone
	}()

	ring := newFrameRing(l.opts.PreTrigger)
	prePeriod := time.Duration(float64(time.Second) / l.opts.PreTriggerFPS)
	var preTick <-chan time.Time
	if ring.cap() > 0 {
		tk := time.NewTicker(prePeriod)
		defer tk.Stop()
		preTick = tk.C
	}
	// Ring frames older than this went stale while captures failed.
	ringMaxAge := max(2*time.Duration(ring.cap()+1)*prePeriod, 5*time.Second)

	var next *Event
	var activeEnd time.Time // when the last active period was seen to end
	for {
		if next == nil {
			select { // an event beats a ring refill
			case ev := <-pending.C():
				next = &ev
			default:
			}
		}
		if next == nil {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case err := <-errCh:
				return fmt.Errorf("capture: trigger: %w", err)
			case ev := <-pending.C():
				next = &ev
			case <-preTick:
				f, ok, err := l.capture(ctx)
				if err != nil {
					return err
				}
				if ok {
					ring.push(f, time.Now())
				}
				continue
			}
		}
		ev := *next
		next = nil
		if !activeEnd.IsZero() && !ev.Time.IsZero() && !ev.Time.After(activeEnd) {
			// An edge from before the active period was seen to end
			// belongs to it (a bounce, the release of a "both" line).
			l.coalesced.Add(1)
			continue
		}
		end, err := l.serve(ctx, ev, ring, ringMaxAge)
		if err != nil {
			return err
		}
		if ev.Active != nil {
			activeEnd = end
		}
	}
}

// serve handles one event and returns when its last frame was decided.
func (l *Looper) serve(ctx context.Context, ev Event, ring *frameRing, maxAge time.Duration) (time.Time, error) {
	l.events.Add(1)
	now := time.Now()
	for _, f := range ring.take(ev.Pre, now.Add(-maxAge)) {
		f.Trigger = frame.PreTrigger
		l.preFrames.Add(1)
		l.frames.Add(1)
		l.emit(f)
	}
	for range max(ev.Frames, 1) {
		f, ok, err := l.capture(ctx)
		if err != nil || !ok {
			return time.Now(), err
		}
		f.Trigger = ev.Kind
		l.frames.Add(1)
		l.emit(f)
	}
	if ev.Active == nil {
		return time.Now(), nil
	}
	fps := ev.ActiveFPS
	if !(fps > 0) {
		fps = l.opts.ActiveFPS
	}
	period := time.Duration(float64(time.Second) / fps)
	next := time.Now().Add(period)
	tm := time.NewTimer(period)
	defer tm.Stop()
	for {
		// The returned time is that of the check that found the event
		// over, so Run can tell edges of this period from later ones.
		at := time.Now()
		if !ev.Active() {
			return at, nil
		}
		select {
		case <-ctx.Done():
			return time.Now(), ctx.Err()
		case <-tm.C:
		}
		at = time.Now()
		if !ev.Active() {
			return at, nil
		}
		f, ok, err := l.capture(ctx)
		if err != nil || !ok {
			return time.Now(), err
		}
		f.Trigger = ev.Kind
		l.frames.Add(1)
		l.emit(f)
		// Keep the schedule, but skip slots a slow capture overran.
		now := time.Now()
		next = next.Add(period)
		if !next.After(now) {
			skip := now.Sub(next)/period + 1
			next = next.Add(skip * period)
		}
		tm.Reset(next.Sub(now))
	}
}

// capture takes one frame. It reports ok=false for a failure to count and
// move past, and an error for one that ends Run.
func (l *Looper) capture(ctx context.Context) (frame.Frame, bool, error) {
	f, err := l.src.Capture(ctx)
	if err == nil {
		l.consec = 0
		return f, true, nil
	}
	if ctx.Err() != nil {
		return frame.Frame{}, false, ctx.Err()
	}
	if errors.Is(err, ErrGaveUp) || errors.Is(err, ErrExhausted) {
		return frame.Frame{}, false, err
	}
	l.captureErrors.Add(1)
	l.consec++
	if m := l.opts.MaxCaptureErrors; m > 0 && l.consec >= m {
		return frame.Frame{}, false, fmt.Errorf("capture: %d capture failures in a row, the last: %w", l.consec, err)
	}
	// Log the 1st, 2nd, 4th, 8th... failure of a run: visible, not a flood.
	if bits.OnesCount(uint(l.consec)) == 1 {
		l.log.Warn("capture failed", "err", err, "in_a_row", l.consec)
	}
	return frame.Frame{}, false, nil
}

// frameRing keeps the last n frames with the time each was taken.
type frameRing struct {
	buf   []ringFrame
	start int // oldest
	n     int
}

type ringFrame struct {
	f  frame.Frame
	at time.Time
}

func newFrameRing(size int) *frameRing { return &frameRing{buf: make([]ringFrame, size)} }

func (r *frameRing) cap() int { return len(r.buf) }

// push adds f, evicting the oldest frame when full.
func (r *frameRing) push(f frame.Frame, at time.Time) {
	if len(r.buf) == 0 {
		return
	}
	if r.n == len(r.buf) {
		r.buf[r.start] = ringFrame{}
		r.start = (r.start + 1) % len(r.buf)
		r.n--
	}
	r.buf[(r.start+r.n)%len(r.buf)] = ringFrame{f, at}
	r.n++
}

// take returns up to k of the newest frames taken after notBefore, oldest
// first, and empties the ring.
func (r *frameRing) take(k int, notBefore time.Time) []frame.Frame {
	var out []frame.Frame
	skip := max(r.n-k, 0)
	for i := skip; i < r.n; i++ {
		e := r.buf[(r.start+i)%len(r.buf)]
		if !e.at.Before(notBefore) {
			out = append(out, e.f)
		}
	}
	clear(r.buf)
	r.start, r.n = 0, 0
	return out
}
