package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"framepush/frame"
	"framepush/internal/backoff"
)

// ErrGaveUp is returned by a Reopener once its device has been unusable
// for longer than ReopenOptions.GiveUp. The agent exits non-zero on it, so
// that systemd restarts the whole process (which also resets USB state
// held by the process, such as leaked driver buffers).
var ErrGaveUp = errors.New("gave up reopening the capture device")

// ReopenOptions tunes a Reopener.
type ReopenOptions struct {
	// Name identifies the device in logs and errors, e.g. "v4l2:/dev/video0".
	Name string
	// Backoff is the delay schedule between attempts: capped exponential
	// with full jitter. Zero fields take backoff.Default's.
	Backoff backoff.Policy
	// GiveUp is how long the device may stay unusable (no frame, no
	// successful open) before Capture returns ErrGaveUp. 0 never gives up.
	GiveUp time.Duration

	// Now and Sleep replace the clock in tests. Sleep must return ctx.Err()
	// when ctx ends first. Nil means the real clock.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand replaces the jitter source in tests (see backoff.Backoff.Rand).
	Rand func() float64
}

// ReopenStats counts what a Reopener went through.
type ReopenStats struct {
	Opens     uint64    // successful opens, the first included
	Reopens   uint64    // successful opens after a loss or a failed open
	Failures  uint64    // device losses plus failed opens
	Down      bool      // no usable source right now
	DownSince time.Time // start of the current outage (zero when up)
	LastError string    // the latest loss or open failure
}

// Reopener is a Source that keeps another one alive: when the inner source
// reports ErrDeviceGone (or cannot be opened) it closes it once, waits
// with backoff and opens a new one through the factory, which renegotiates
// from scratch. It never spins: every retry waits at least a tenth of the
// initial delay. After GiveUp of continuous failure it returns an error
// wrapping ErrGaveUp. Sequence numbers continue across reopens.
//
// The source is opened on the first Capture. Like every Source, Capture is
// for one goroutine; Close and Stats may be called from any.
type Reopener struct {
	open func(context.Context) (Source, error)
	opts ReopenOptions
	log  *slog.Logger
	now  func() time.Time

	capMu sync.Mutex // serialises Capture (and the open/close of src within it)

	mu        sync.Mutex // guards the fields below
	src       Source
	closed    bool
	bo        *backoff.Backoff
	seq       uint64
	stats     ReopenStats
	downSince time.Time
	everOpen  bool
}

// NewReopener returns a Reopener over open. A factory error means the
// source was not opened (any Source returned with it is ignored).
func NewReopener(open func(context.Context) (Source, error), opts ReopenOptions, log *slog.Logger) *Reopener {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Name == "" {
		opts.Name = "capture device"
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	if opts.Sleep == nil {
		opts.Sleep = reopenSleep
	}
	bo := backoff.New(opts.Backoff)
	bo.Rand = opts.Rand
	return &Reopener{open: open, opts: opts, log: log, now: now, bo: bo}
}

// reopenSleep waits d or until ctx ends.
func reopenSleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

var errReopenerClosed = errors.New("capture: reopener is closed")

// Capture returns the next frame from the current source, reopening it as
// often as needed. It returns ctx.Err() when ctx ends, an error wrapping
// ErrGaveUp after GiveUp of continuous failure, and passes through any
// other error of the inner source (which stays open).
func (r *Reopener) Capture(ctx context.Context) (frame.Frame, error) {
	r.capMu.Lock()
	defer r.capMu.Unlock()
	for {
		if err := ctx.Err(); err != nil {
			return frame.Frame{}, err
		}
		r.mu.Lock()
		src, closed := r.src, r.closed
		r.mu.Unlock()
		if closed {
			return frame.Frame{}, errReopenerClosed
		}
		if src == nil {
			var err error
			if src, err = r.openOnce(ctx); err != nil {
				if ctx.Err() != nil {
					return frame.Frame{}, ctx.Err()
				}
				d, err := r.failed("open failed", err, true)
				if err != nil {
					return frame.Frame{}, err
				}
				if err := r.opts.Sleep(ctx, d); err != nil {
					return frame.Frame{}, err
				}
				continue
			}
		}
		f, err := src.Capture(ctx)
		if err == nil {
			r.up()
			r.mu.Lock()
			r.seq++
			f.Seq = r.seq
			r.mu.Unlock()
			return f, nil
		}
		if !errors.Is(err, ErrDeviceGone) {
			return frame.Frame{}, err
		}
		r.drop(src)
		d, err := r.failed("lost", err, true)
		if err != nil {
			return frame.Frame{}, err
		}
		if err := r.opts.Sleep(ctx, d); err != nil {
			return frame.Frame{}, err
		}
	}
}

// Open opens the source now unless it is open already, so that a wrong
// device path or an unsupported mode shows when the agent starts rather
// than at the first GPIO event. A failure is counted and logged like any
// other and returned; Capture tries again when it is next called. Like
// Capture, Open belongs to the capturing goroutine.
func (r *Reopener) Open(ctx context.Context) error {
	r.capMu.Lock()
	defer r.capMu.Unlock()
	r.mu.Lock()
	src, closed := r.src, r.closed
	r.mu.Unlock()
	if closed {
		return errReopenerClosed
	}
	if src != nil {
		return nil
	}
	_, err := r.openOnce(ctx)
	if err == nil || ctx.Err() != nil {
		return err
	}
	if _, gerr := r.failed("open failed", err, false); gerr != nil {
		return gerr
	}
	return err
}

// openOnce calls the factory and installs the source, unless Close came
// in the meantime.
func (r *Reopener) openOnce(ctx context.Context) (Source, error) {
	src, err := r.open(ctx)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		src.Close()
		return nil, errReopenerClosed
	}
	r.src = src
	r.stats.Opens++
	if r.everOpen {
		r.stats.Reopens++
		r.log.Info("capture device reopened", "device", r.opts.Name, "down_for", r.now().Sub(r.downSince).Round(time.Millisecond), "attempts", r.bo.Attempts())
	} else {
		r.log.Debug("capture device opened", "device", r.opts.Name)
	}
	r.everOpen = true
	return src, nil
}

// drop closes a lost source, once.
func (r *Reopener) drop(src Source) {
	r.mu.Lock()
	if r.src == src {
		r.src = nil
	}
	r.mu.Unlock()
	if err := src.Close(); err != nil {
		r.log.Debug("closing the lost capture device", "device", r.opts.Name, "err", err)
	}
}

// failed counts a failure and decides whether to go on: it returns an
// error wrapping ErrGaveUp once the outage has lasted GiveUp. Otherwise,
// when retry is set, it draws the delay to wait before the next attempt.
// It writes the event's one log line ("capture device lost, will retry",
// with the delay it returns as retry_in): the Reopener is the only part
// that restarts a source, so this line is the whole story of a failure.
func (r *Reopener) failed(what string, cause error, retry bool) (time.Duration, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if r.downSince.IsZero() {
		r.downSince = now
	}
	r.stats.Failures++
	r.stats.Down = true
	r.stats.DownSince = r.downSince
	r.stats.LastError = cause.Error()
	down := now.Sub(r.downSince)
	if r.opts.GiveUp > 0 && down >= r.opts.GiveUp {
		r.log.Error("giving up on the capture device", "device", r.opts.Name, "down_for", down.Round(time.Millisecond), "failures", r.stats.Failures, "err", cause)
		return 0, fmt.Errorf("capture: %s unusable for %v (limit %v): %w; last error: %w", r.opts.Name, down.Round(time.Second), r.opts.GiveUp, ErrGaveUp, cause)
	}
	// Warn on the 1st, 2nd, 4th, 8th... failure of an outage: visible in
	// the journal without flooding it during a long one.
	attempt := r.bo.Attempts() + 1
	level := slog.LevelDebug
	if attempt&(attempt-1) == 0 {
		level = slog.LevelWarn
	}
	attrs := []any{"device", r.opts.Name, "err", cause, "down_for", down.Round(time.Millisecond), "attempt", attempt}
	var d time.Duration
	if retry {
		d = r.nextDelay()
		attrs = append(attrs, "retry_in", d)
	}
	r.log.Log(context.Background(), level, "capture device "+what+", will retry", attrs...)
	return d, nil
}

// nextDelay draws the next backoff delay, with a floor so that an unlucky
// run of tiny jittered delays cannot turn into a busy loop of open(2)
// calls. r.mu is held.
func (r *Reopener) nextDelay() time.Duration {
	floor := r.bo.Initial / 10
	if floor <= 0 {
		floor = backoff.Default.Initial / 10
	}
	return max(r.bo.Next(), floor)
}

// up marks the device healthy after a frame.
func (r *Reopener) up() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.downSince.IsZero() {
		r.log.Info("capture device recovered", "device", r.opts.Name, "down_for", r.now().Sub(r.downSince).Round(time.Millisecond))
	}
	r.downSince = time.Time{}
	r.stats.Down = false
	r.stats.DownSince = time.Time{}
	r.bo.Reset()
}

// Stats returns the counters so far.
func (r *Reopener) Stats() ReopenStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Close closes the current source. It is safe to call more than once and
// while Capture runs (which then returns an error).
func (r *Reopener) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	src := r.src
	r.src = nil
	r.mu.Unlock()
	if src != nil {
		return src.Close()
	}
	return nil
}
