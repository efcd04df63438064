package capture

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"framepush/frame"
)

// ErrTriggerClosed is returned by Wait on a closed trigger.
var ErrTriggerClosed = errors.New("capture: trigger is closed")

// Coalescer is implemented by triggers that drop events nobody was waiting
// for instead of delivering them late in a burst. Loop adds the count to
// LoopStats.Coalesced.
type Coalescer interface {
	Coalesced() uint64
}

// ticker fires on a fixed schedule anchored at its first Wait, so the rate
// does not drift with the time each capture takes. When a Wait comes later
// than a whole period, the missed slots are skipped (and counted) and the
// event fires at once: a slow capture costs frames, never a catch-up burst.
type ticker struct {
	kind   frame.TriggerKind
	period time.Duration
	now    func() time.Time
	// sleep waits d, or returns early with ctx.Err() or ErrTriggerClosed.
	// Tests replace it with a fake clock.
	sleep func(ctx context.Context, d time.Duration) error

	mu   sync.Mutex // serialises Wait; guards next
	next time.Time  // next slot; zero before the first Wait

	skipped   atomic.Uint64
	done      chan struct{}
	closeOnce sync.Once
}

func newTicker(kind frame.TriggerKind, period time.Duration) *ticker {
	t := &ticker{kind: kind, period: period, now: time.Now, done: make(chan struct{})}
	t.sleep = t.realSleep
	return t
}

// NewContinuous returns a trigger firing fps times a second (Kind
// "continuous"), the first time at once. It panics if fps is not a
// positive finite number, like time.NewTicker.
func NewContinuous(fps float64) Trigger {
	if !(fps > 0) || math.IsInf(fps, 0) {
		panic(fmt.Sprintf("capture: NewContinuous: frame rate %v is not positive", fps))
	}
	return newTicker(frame.Continuous, max(time.Duration(float64(time.Second)/fps), time.Microsecond))
}

// NewInterval returns a timelapse trigger firing every period (Kind
// "interval"), the first time at once. It panics if every is not positive.
func NewInterval(every time.Duration) Trigger {
	if every <= 0 {
		panic(fmt.Sprintf("capture: NewInterval: period %v is not positive", every))
	}
	return newTicker(frame.Interval, every)
}

func (t *ticker) realSleep(ctx context.Context, d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.done:
		return ErrTriggerClosed
	}
}

// Wait blocks until the next slot of the schedule.
func (t *ticker) Wait(ctx context.Context) (Event, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	select {
	case <-t.done:
		return Event{}, ErrTriggerClosed
	default:
	}
	if err := ctx.Err(); err != nil {
		return Event{}, err
	}
	now := t.now()
	if t.next.IsZero() {
		t.next = now
	}
	if d := t.next.Sub(now); d > 0 {
		if err := t.sleep(ctx, d); err != nil {
			return Event{}, err
		}
		now = t.now()
	}
	t.next = t.next.Add(t.period)
	if !t.next.After(now) {
		missed := now.Sub(t.next)/t.period + 1
		t.next = t.next.Add(missed * t.period)
		t.skipped.Add(uint64(missed))
	}
	return Event{Time: now, Kind: t.kind, Frames: 1}, nil
}

// Coalesced returns how many slots were skipped because Wait came late.
func (t *ticker) Coalesced() uint64 { return t.skipped.Load() }

// Close makes pending and later Waits return ErrTriggerClosed.
func (t *ticker) Close() error {
	t.closeOnce.Do(func() { close(t.done) })
	return nil
}

// merged is the Trigger returned by Merge.
type merged struct {
	ts        []Trigger
	out       chan mergedResult
	ctx       context.Context
	cancel    context.CancelFunc
	startOnce sync.Once
	closeOnce sync.Once
	wg        sync.WaitGroup
}

type mergedResult struct {
	ev  Event
	err error
}

// Merge returns a trigger that fires whenever any of ts fires, with that
// trigger's event. Each trigger is waited on by a goroutine of its own
// (started by the first Wait) that holds at most one undelivered event, so
// a busy consumer sees at most one stale event per trigger, never a queue.
// The first error of any trigger is returned by Wait. Close closes them all.
func Merge(ts ...Trigger) Trigger {
	if len(ts) == 1 {
		return ts[0]
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &merged{ts: ts, out: make(chan mergedResult), ctx: ctx, cancel: cancel}
}

func (m *merged) start() {
	for _, t := range m.ts {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			for {
				ev, err := t.Wait(m.ctx)
				if m.ctx.Err() != nil {
					return
				}
				select {
				case m.out <- mergedResult{ev, err}:
				case <-m.ctx.Done():
					return
				}
				if err != nil {
					return
				}
			}
		}()
	}
}

// Wait returns the next event of any merged trigger.
func (m *merged) Wait(ctx context.Context) (Event, error) {
	if m.ctx.Err() != nil {
		return Event{}, ErrTriggerClosed
	}
	m.startOnce.Do(m.start)
	select {
	case r := <-m.out:
		return r.ev, r.err
	case <-ctx.Done():
		return Event{}, ctx.Err()
	case <-m.ctx.Done():
		return Event{}, ErrTriggerClosed
	}
}

// Coalesced sums the counts of the merged triggers that keep one.
func (m *merged) Coalesced() uint64 {
	var n uint64
	for _, t := range m.ts {
		if c, ok := t.(Coalescer); ok {
			n += c.Coalesced()
		}
	}
	return n
}

// Close closes every merged trigger and waits for the goroutines of Wait.
func (m *merged) Close() error {
	var errs []error
	m.closeOnce.Do(func() {
		m.startOnce.Do(func() {}) // no goroutines after Close
		m.cancel()
		for _, t := range m.ts {
			if err := t.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		m.wg.Wait()
	})
	return errors.Join(errs...)
}
