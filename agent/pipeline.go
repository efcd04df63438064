package agent

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"framepush/capture"
	"framepush/config"
	"framepush/frame"
	"framepush/queue"
)

// This file is the pipeline a reload replaces: start builds and starts
// one (capture and send goroutines), captureLoop feeds the queue, stop
// retires it.

// Source is a pipeline's frame source as the agent drives it: a
// capture.Source that reopens itself when its device is lost (the one
// restarter) and reports its state for health. *capture.Reopener is the
// one in use; capture.NewReopener makes one of any capture.Source.
type Source interface {
	capture.Source
	// Open opens the device now rather than at the first Capture; an
	// error wrapping capture.ErrGaveUp means it will never come back.
	Open(ctx context.Context) error
	// Stats reports the device's state: up, down since, reopens.
	Stats() capture.ReopenStats
}

// pipeline is the part of the agent a reload replaces: source, trigger,
// sender and the two goroutines driving them. The queue outlives it, so a
// reload loses nothing.
type pipeline struct {
	cfg  config.Config
	src  Source
	trig capture.Trigger
	tx   Transport

	captureCancel context.CancelFunc
	captureDone   chan error
	sendCancel    context.CancelFunc
	sendDone      chan struct{}
	drain         chan struct{} // closed: the send loop stops after its current frame (untilEmpty: once the queue is empty or the link fails)
	untilEmpty    atomic.Bool

	loop      atomic.Pointer[capture.Looper]
	inCapture atomic.Int64 // unix nanos when the current Capture call began; 0 outside
	inSend    atomic.Int64
	progress  atomic.Int64 // unix nanos of the last capture-side progress (frame, reopen, failure)
}

// start builds and starts a pipeline for cfg, with the parts the
// Options' factories make (build.go's by default).
func (a *Agent) start(cfg config.Config) (*pipeline, error) {
	src, trig, err := a.opts.NewSource(cfg, a.log)
	if err != nil {
		return nil, err
	}
	tx, err := a.opts.NewTransport(cfg, a.log)
	if err != nil {
		src.Close()
		trig.Close()
		return nil, err
	}
	p := &pipeline{cfg: cfg, src: src, trig: trig, tx: tx,
		captureDone: make(chan error, 1), sendDone: make(chan struct{}), drain: make(chan struct{})}
	p.progress.Store(time.Now().UnixNano())

	cctx, ccancel := context.WithCancel(context.Background())
	sctx, scancel := context.WithCancel(context.Background())
	p.captureCancel, p.sendCancel = ccancel, scancel
	go func() { p.captureDone <- a.captureLoop(cctx, p) }()
	go func() { defer close(p.sendDone); a.sendLoop(sctx, p) }()
	return p, nil
}

// captureLoop runs the capture loop into the queue.
func (a *Agent) captureLoop(ctx context.Context, p *pipeline) error {
	// Open the camera now: with an event trigger the first Capture may be
	// hours away, and a wrong device should be in the log at start. A
	// failure is logged by the reopener and retried at the first capture.
	if err := p.src.Open(ctx); errors.Is(err, capture.ErrGaveUp) {
		return err
	}
	src := &watchedSource{Source: p.src, p: p}
	trig := &countingTrigger{Trigger: p.trig, n: &a.events}
	err := p.looper(src, trig, LoopOptions(p.cfg.Trigger, a.log.With("part", "capture")), func(f frame.Frame) {
		// Number frames as they enter the queue: a gap in the ids a
		// receiver sees is then a frame lost, never a pre-trigger frame
		// that aged out of its ring unsent.
		f.Seq = a.seq.Add(1)
		a.metrics.captured.Inc()
		a.lastCapture.Store(f.Time.UnixNano())
		p.progress.Store(time.Now().UnixNano())
		a.snap.put(f) // a shared reference for the viewers; f still goes to the queue
		switch err := a.queue.Put(f); {
		case err == nil, errors.Is(err, queue.ErrNotDurable):
			// ErrNotDurable: kept in RAM; the queue logged the spool failure.
		case errors.Is(err, queue.ErrDropped), errors.Is(err, queue.ErrTooLarge):
			// The queue logged and counted it under its reason.
			a.metrics.putDropped.Inc()
		default:
			a.metrics.putDropped.Inc()
			a.log.Error("frame not queued", "seq", f.Seq, "err", err)
		}
	}).Run(ctx)
	if ctx.Err() != nil {
		return nil
	}
	if err == nil {
		err = errors.New("capture loop ended")
	}
	return err
}

// stop retires a pipeline: capture stops at once; the send loop goes on
// while frames are pending and the link works, for at most
// shutdown.timeout (until the queue is empty when untilEmpty, else only
// the frame in flight), then BYE BYE closes the link.
func (a *Agent) stop(p *pipeline, untilEmpty bool) {
	deadline := time.Now().Add(p.cfg.Shutdown.Timeout)
	p.captureCancel()
	select {
	case <-p.captureDone:
	case <-time.After(p.cfg.Shutdown.Timeout):
		a.log.Error("the capture loop did not stop in time; continuing the shutdown")
	}
	p.trig.Close()
	p.src.Close()

	p.untilEmpty.Store(untilEmpty)
	close(p.drain)
	// The queue says when nothing is left to send (a reload: nothing in
	// flight); the send loop is then stopped out of its wait for a frame.
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	drained := make(chan struct{})
	go func() {
		wait := a.queue.WaitSettled
		if untilEmpty {
			wait = a.queue.WaitEmpty
		}
		if wait(wctx) == nil {
			close(drained)
		}
	}()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
wait:
	for {
		select {
		case <-p.sendDone:
			break wait
		case <-drained:
			p.sendCancel()
			drained = nil
		case <-timer.C:
			a.log.Warn("shutdown timeout: the frame in flight is kept for the next run", "timeout", p.cfg.Shutdown.Timeout)
			p.sendCancel()
		}
	}
	p.sendCancel()
	bctx, cancel := context.WithTimeout(context.Background(), min(2*time.Second, max(time.Until(deadline), 500*time.Millisecond)))
	if err := p.tx.Close(bctx); err != nil {
		a.log.Debug("closing the link", "err", err)
	}
	cancel()
}

// looper creates the pipeline's capture loop and keeps it for Stats.
func (p *pipeline) looper(src capture.Source, trig capture.Trigger, o capture.LoopOptions, emit func(frame.Frame)) *capture.Looper {
	l := capture.NewLooper(src, trig, o, emit)
	p.loop.Store(l)
	return l
}

// watchedSource records when a Capture call is in progress and whether the
// reopener is making progress, for the watchdog.
type watchedSource struct {
	capture.Source
	p *pipeline
}

func (w *watchedSource) Capture(ctx context.Context) (frame.Frame, error) {
	w.p.inCapture.Store(time.Now().UnixNano())
	defer w.p.inCapture.Store(0)
	return w.Source.Capture(ctx)
}

// countingTrigger counts trigger events for metrics.
type countingTrigger struct {
	capture.Trigger
	n *atomic.Uint64
}

func (c *countingTrigger) Wait(ctx context.Context) (capture.Event, error) {
	ev, err := c.Trigger.Wait(ctx)
	if err == nil {
		c.n.Add(1)
	}
	return ev, err
}
