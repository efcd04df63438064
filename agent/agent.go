// Package agent joins the parts of framepush into the running device
// agent:
//
//	trigger → capture → queue → sender → receiver
//
// A capture goroutine runs capture.Loop (trigger and source) and puts every
// frame into the queue; a send goroutine takes frames from the queue in
// capture order and delivers them one at a time, acknowledging a frame to
// the queue only after the receiver answered GOT IMAGE. Everything between
// a capture and that answer is held by the queue (RAM, then the disk spool)
// so that no frame is lost to a network or receiver outage, a restart or a
// reload; frames are dropped only by the queue's configured policy or when
// the receiver refuses one permanently, and every drop is logged and
// counted.
//
// The agent also serves /healthz and /metrics, talks to systemd (readiness,
// watchdog, status) and reloads its configuration on request.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"framepush/capture"
	"framepush/config"
	"framepush/frame"
	"framepush/queue"
	"framepush/sender"
)

// Transport delivers frames to a receiver. *sender.Sender is the one in
// use; the seam keeps the agent's send loop independent of the wire.
type Transport interface {
	// SendID makes one delivery attempt of f under the frame id id; nil
	// means the receiver acknowledged the frame. It is called by one
	// goroutine at a time.
	SendID(ctx context.Context, f frame.Frame, id string) error
	// Close ends the session politely (BYE BYE) and releases the link.
	Close(ctx context.Context) error
	// Stats reports the link state for metrics.
	Stats() sender.Stats
}

// Options are what the agent needs besides its configuration.
type Options struct {
	// Logger receives everything the agent has to say; nil discards.
	Logger *slog.Logger
	// Reload loads the configuration again (file, environment, flags) when
	// a reload is requested. Nil means reloads are refused.
	Reload func() (*config.Loaded, error)
	// Notify sends a state to systemd (sd_notify). Nil means
	// daemon.SdNotify, which does nothing outside systemd.
	Notify func(state string)
	// Watchdog overrides the systemd watchdog interval; 0 means what
	// systemd asks for ($WATCHDOG_USEC), usually none.
	Watchdog time.Duration
	// StatusEvery is the period of the info-level status line; 0 means
	// 10 minutes, negative turns it off.
	StatusEvery time.Duration
	// GovernMemory lets the agent set the process's soft memory limit (see
	// memory.go). It is process-wide, so only a program that runs one
	// agent and little else (framepush run) should turn it on.
	GovernMemory bool
}

// Agent is one running framepush agent.
type Agent struct {
	log     *slog.Logger
	opts    Options
	queue   *queue.Queue
	metrics *agentMetrics
	ln      net.Listener // HTTP, nil when off
	started time.Time

	mu   sync.Mutex
	cfg  config.Config
	pipe *pipeline

	lastCapture  atomic.Int64 // unix nanoseconds
	lastDelivery atomic.Int64
	linkUp       atomic.Bool
	events       atomic.Uint64
	seq          atomic.Uint64 // id of the last frame queued in this run
	memLimit     atomic.Int64  // soft memory limit set by governMemory; 0 when left to the environment

	// Link counters of retired pipelines (guarded by mu): a reload builds
	// a new Sender whose counters start at zero, and a _total must never
	// go backwards while the process runs.
	retiredConnects, retiredReconnects uint64

	// Refusals since the last GOT IMAGE, and when the last one was, for
	// health; refusals summarises their warnings.
	refusedInARow atomic.Uint64
	lastRefusal   atomic.Int64
	lastRefusalIs atomic.Pointer[string]
	refusals      rateLog

	snap snapshot // the newest frame for /snapshot.jpg and /stream.mjpg (snapshot.go)
}

// pipeline is the part of the agent a reload replaces: source, trigger,
// sender and the two goroutines driving them. The queue outlives it, so a
// reload loses nothing.
type pipeline struct {
	cfg  config.Config
	src  *capture.Reopener
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

// New checks cfg, opens the queue (recovering any spooled frames) and the
// HTTP listener. The camera, trigger and link are opened by Run.
func New(cfg config.Config, opts Options) (*Agent, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Notify == nil {
		opts.Notify = func(state string) { daemon.SdNotify(false, state) }
	}
	if opts.StatusEvery == 0 {
		opts.StatusEvery = 10 * time.Minute
	}
	if err := CheckConfig(cfg); err != nil {
		return nil, err
	}
	a := &Agent{log: opts.Logger, opts: opts, cfg: cfg, started: time.Now()}
	q, err := queue.Open(QueueOptions(cfg.Queue, a.log.With("part", "queue")))
	if err != nil {
		return nil, err // the queue's errors say "queue: ..." already
	}
	a.queue = q
	if st := q.Stats(); st.Recovered > 0 {
		a.log.Info("frames recovered from the spool, they go first", "frames", st.Recovered, "bytes", st.SpoolBytes, "spool", cfg.Queue.SpoolDir)
	}
	a.metrics = newAgentMetrics(a)
	if cfg.HTTP.Listen != "" {
		ln, err := net.Listen("tcp", cfg.HTTP.Listen)
		if err != nil {
			q.Close()
			return nil, fmt.Errorf("http.listen: %w (set http.listen to another address, or \"\" to turn the listener off)", err)
		}
		a.ln = ln
	}
	return a, nil
}

// Addr is the HTTP listener's address, nil when off.
func (a *Agent) Addr() net.Addr {
	if a.ln == nil {
		return nil
	}
	return a.ln.Addr()
}

// Run runs the agent until ctx ends (an orderly stop: capture stops, the
// queue is drained while the link works, for at most shutdown.timeout,
// then what is left is spooled) or until the capture side fails for good
// (the camera stayed away for longer than source.reopen.give_up), in which
// case it stops the same way and returns the error. A receive on reload
// reloads the configuration. The agent cannot be run twice.
func (a *Agent) Run(ctx context.Context, reload <-chan struct{}) (err error) {
	var srv *http.Server
	if a.ln != nil {
		srv = &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 5 * time.Second}
		srv.RegisterOnShutdown(a.snap.closeStreams)
		go srv.Serve(a.ln)
		a.log.Info("http listener up", "addr", a.ln.Addr().String(), "paths", "/healthz /metrics /snapshot.jpg /stream.mjpg")
	}
	defer func() {
		if srv != nil {
			sctx, cancel := context.WithTimeout(context.Background(), time.Second)
			srv.Shutdown(sctx)
			cancel()
		}
		if cerr := a.queue.Close(); cerr != nil {
			a.log.Error("closing the queue", "err", cerr)
		}
		st := a.queue.Stats()
		a.log.Info("stopped", "captured", a.metrics.captured.Get(), "delivered", a.metrics.sent.Get(),
			"left_in_spool", st.SpoolFrames, "dropped", dropTotal(st)+a.metrics.rejected.Get())
	}()

	mctx, mcancel := context.WithCancel(context.Background())
	govDone := make(chan struct{})
	if a.opts.GovernMemory {
		go func() { defer close(govDone); a.governMemory(mctx) }()
	} else {
		close(govDone)
	}
	defer func() { mcancel(); <-govDone }() // the limit is restored when Run returns

	a.mu.Lock()
	cfg := a.cfg
	a.mu.Unlock()
	p, err := a.start(cfg)
	if err != nil {
		return err
	}
	a.setPipe(p)
	a.log.Info("running", "name", cfg.Name, "source", cfg.Source.Type, "trigger", cfg.Trigger.Type,
		"server", cfg.Server.Addresses, "mode", cfg.Server.Mode, "spool", cfg.Queue.SpoolDir)
	a.opts.Notify(daemon.SdNotifyReady + "\nSTATUS=running")

	wd := a.opts.Watchdog
	if wd == 0 {
		wd, _ = daemon.SdWatchdogEnabled(false)
	}
	var wdTick <-chan time.Time
	if wd > 0 {
		t := time.NewTicker(wd / 3)
		defer t.Stop()
		wdTick = t.C
	}
	var statusTick <-chan time.Time
	if a.opts.StatusEvery > 0 {
		t := time.NewTicker(a.opts.StatusEvery)
		defer t.Stop()
		statusTick = t.C
	}

	for {
		p := a.currentPipe()
		select {
		case <-ctx.Done():
			a.opts.Notify(daemon.SdNotifyStopping + "\nSTATUS=stopping")
			a.log.Info("stopping: capture stops, queued frames are delivered or spooled", "within", p.cfg.Shutdown.Timeout)
			a.stop(p, true)
			return nil
		case cerr := <-p.captureDone:
			if errors.Is(cerr, capture.ErrExhausted) {
				// A folder replayed without loop: done, like a finished job.
				a.log.Info("source exhausted: every file was captured; delivering what is queued, then exiting")
				p.captureDone <- nil
				a.stop(p, true)
				return nil
			}
			// The capture side ended on its own: the camera is gone for good.
			a.opts.Notify(daemon.SdNotifyStopping + "\nSTATUS=capture failed")
			a.log.Error("capture failed, stopping so that the service manager restarts the agent", "err", cerr)
			p.captureDone <- cerr // stop waits for it
			a.stop(p, true)
			return cerr
		case <-reload:
			if err := a.reload(); err != nil {
				// Neither the new nor the old configuration starts: stop,
				// so that the service manager restarts the agent.
				a.opts.Notify(daemon.SdNotifyStopping + "\nSTATUS=reload failed")
				return err
			}
		case <-wdTick:
			if why := a.stuck(p); why != "" {
				a.log.Error("not feeding the systemd watchdog", "why", why)
				continue
			}
			a.opts.Notify(daemon.SdNotifyWatchdog)
		case <-statusTick:
			a.logStatus()
		}
	}
}

// start builds and starts a pipeline for cfg.
func (a *Agent) start(cfg config.Config) (*pipeline, error) {
	log := a.log
	src, err := NewSource(cfg.Source, log.With("part", "source"))
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	trig, err := NewTrigger(cfg.Trigger, log.With("part", "trigger"))
	if err != nil {
		src.Close()
		return nil, fmt.Errorf("trigger: %w", err)
	}
	so, err := SenderOptions(cfg.Server, cfg.Name, log.With("part", "sender"))
	if err != nil {
		src.Close()
		trig.Close()
		return nil, err
	}
	tx, err := sender.New(so)
	if err != nil {
		src.Close()
		trig.Close()
		return nil, configError{err} // only bad options fail New; its errors say "sender: ..." already
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

// sendLoop delivers queued frames in order until ctx ends, or, once drain
// is closed, until the queue is empty or a delivery fails. With a
// pipelining window it is sendWindowed (sendwindow.go).
func (a *Agent) sendLoop(ctx context.Context, p *pipeline) {
	if w, ok := p.tx.(WindowTransport); ok && w.Windowed() {
		a.sendWindowed(ctx, p, w)
		return
	}
	var ls linkState
	for {
		select {
		case <-p.drain:
			if !p.untilEmpty.Load() || a.queue.Stats().Pending == 0 {
				return
			}
		default:
		}
		it, err := a.queue.Next(ctx)
		if err != nil {
			return // ctx ended or the queue closed
		}
		t0 := time.Now()
		p.inSend.Store(t0.UnixNano())
		err = p.tx.SendID(ctx, it.Frame, it.ID)
		p.inSend.Store(0)
		if a.settle(ctx, p, &ls, it, t0, err) {
			return
		}
	}
}

// linkState is what the send loop remembers across outcomes for its logs.
type linkState struct {
	failures  int
	downSince time.Time
	lastErr   string
}

// settle books the outcome of one delivery attempt of it, begun at t0:
// Ack when delivered or refused permanently, Nack otherwise. It reports
// true when the send loop must end (ctx ended, or stopping after a
// failure).
func (a *Agent) settle(ctx context.Context, p *pipeline, ls *linkState, it queue.Item, t0 time.Time, err error) (stop bool) {
	f := it.Frame
	answer, refused := sender.RefusedAfterPayload(err)
	switch {
	case err == nil:
		a.queue.Ack(it)
		a.queue.SetLinkUp(true)
		a.linkUp.Store(true)
		a.metrics.sent.Inc()
		a.metrics.sentBytes.Add(len(f.Data))
		a.metrics.sendSeconds.UpdateDuration(t0)
		a.lastDelivery.Store(time.Now().UnixNano())
		a.refusedInARow.Store(0)
		if ls.failures > 0 {
			a.log.Info("delivering again", "after_failed_attempts", ls.failures, "down_for", time.Since(ls.downSince).Round(time.Millisecond), "queued", a.queue.Stats().Pending)
			ls.failures, ls.lastErr = 0, ""
		}
		a.log.Debug("frame delivered", "seq", f.Seq, "bytes", len(f.Data), "trigger", f.Trigger, "took", time.Since(t0).Round(time.Microsecond))
	case sender.IsPermanent(err):
		// Retrying could never succeed: drop it, loudly.
		a.queue.Ack(it)
		a.metrics.rejected.Inc()
		a.refusal(err)
		a.refusals.log(a.log, "receiver refused the frame permanently; dropped (counted as rejected)",
			"id", it.ID, "bytes", len(f.Data), "captured", f.Time, "err", err)
	case refused && ctx.Err() == nil:
		// The receiver is there and had the whole frame, but refused
		// this one: retried up to queue.max_attempts times, then moved
		// aside so that the frames behind it flow.
		a.metrics.failures.Inc()
		a.refusal(err)
		a.linkUp.Store(true) // it answered: reachable, no reason to spool
		dead, qerr := a.queue.Refused(it, answer)
		switch {
		case qerr != nil:
			a.log.Error("settling a refused frame", "id", it.ID, "err", qerr)
		case dead:
			a.metrics.deadLettered.Inc()
		default:
			a.refusals.log(a.log, "receiver refused the frame after its payload; it is retried",
				"id", it.ID, "bytes", len(f.Data), "answer", answer)
		}
	case sender.IsUnanswered(err):
		// Sent in a window behind a frame whose failure is booked on its
		// own: not refused, not a failure; it goes again, in order.
		a.queue.Nack(it)
		return ctx.Err() != nil
	default:
		a.queue.Nack(it)
		a.metrics.failures.Inc()
		if ctx.Err() != nil {
			return true
		}
		a.queue.SetLinkUp(false)
		a.linkUp.Store(false)
		if ls.failures == 0 {
			ls.downSince = t0
			st := a.queue.Stats()
			a.log.Warn("cannot deliver frames; they stay queued and are retried with backoff", "err", err, "queued", st.Pending, "spooled", st.SpoolFrames)
		} else if msg := err.Error(); msg != ls.lastErr {
			a.log.Info("still cannot deliver", "err", err, "failed_attempts", ls.failures+1, "down_for", time.Since(ls.downSince).Round(time.Second))
		} else {
			a.log.Debug("delivery attempt failed", "err", err, "failed_attempts", ls.failures+1)
		}
		ls.failures++
		ls.lastErr = err.Error()
		select {
		case <-p.drain:
			return true // stopping: the rest is spooled
		default:
		}
	}
	return false
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

// reload applies a new configuration without losing a frame: the queue
// stays, the pipeline is rebuilt. Sections that the queue, the listener
// and the logger were built from cannot change in place; a reload that
// touches them is refused with an explanation, and the agent keeps
// running as before. It returns an error only when neither the new nor the
// old configuration can be started again; the pipeline is then stopped
// and the agent must end.
func (a *Agent) reload() error {
	if a.opts.Reload == nil {
		a.log.Warn("reload requested but this agent was started without a way to reload; restart it instead")
		return nil
	}
	l, err := a.opts.Reload()
	if err != nil {
		a.metrics.reloadFails.Inc()
		a.log.Error("reload refused: the new configuration is invalid; still running the old one", "err", err)
		return nil
	}
	a.mu.Lock()
	old := a.cfg
	a.mu.Unlock()
	nc := l.Config
	var fixed []string
	if !reflect.DeepEqual(old.Queue, nc.Queue) {
		fixed = append(fixed, "queue")
	}
	if !reflect.DeepEqual(old.HTTP, nc.HTTP) {
		fixed = append(fixed, "http")
	}
	if !reflect.DeepEqual(old.Log, nc.Log) {
		fixed = append(fixed, "log")
	}
	if len(fixed) > 0 {
		a.metrics.reloadFails.Inc()
		a.log.Error("reload refused: these sections cannot change while running; restart the agent (systemctl restart framepush) to apply them", "sections", fixed)
		return nil
	}
	if reflect.DeepEqual(old, nc) {
		a.log.Info("reload: configuration unchanged")
		a.metrics.reloads.Inc()
		return nil
	}
	p := a.currentPipe()
	a.log.Info("reloading: stopping capture and the link; queued frames stay queued")
	a.stop(p, false)
	a.retire(p)
	np, err := a.start(nc)
	if err != nil {
		a.metrics.reloadFails.Inc()
		a.log.Error("reload failed, going back to the previous configuration", "err", err)
		np, err = a.start(old)
		if err != nil {
			// Neither works (e.g. the GPIO line was taken meanwhile).
			a.log.Error("the previous configuration cannot be started again either", "err", err)
			a.setPipe(nil)
			return fmt.Errorf("reload: %w", err)
		}
		a.setPipe(np)
		return nil
	}
	a.mu.Lock()
	a.cfg = nc
	a.mu.Unlock()
	a.setPipe(np)
	a.metrics.reloads.Inc()
	a.log.Info("reloaded", "source", nc.Source.Type, "trigger", nc.Trigger.Type, "server", nc.Server.Addresses)
	return nil
}

// retire folds the link counters of a stopped pipeline into the agent's
// and unsets the pipeline, in one step under mu, so that a snapshot sees
// either the old pipeline or the folded totals, never both or neither.
func (a *Agent) retire(p *pipeline) {
	st := p.tx.Stats()
	a.mu.Lock()
	a.retiredConnects += st.Connects
	a.retiredReconnects += st.Reconnects
	if a.pipe == p {
		a.pipe = nil
	}
	a.mu.Unlock()
}

func (a *Agent) setPipe(p *pipeline) {
	a.mu.Lock()
	a.pipe = p
	a.mu.Unlock()
}

func (a *Agent) currentPipe() *pipeline {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pipe
}

// Config returns the configuration in effect.
func (a *Agent) Config() config.Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cfg
}

// stuck explains why the agent looks hung (and the systemd watchdog
// should not be fed), or returns "". A Capture call may legitimately last
// long while a lost camera is retried, so the capture side counts as
// stuck only when it made no progress (no frame, no reopen attempt) for
// longer than one retry can take; a Send call is bounded by its timeouts
// and backoff.
func (a *Agent) stuck(p *pipeline) string {
	now := time.Now()
	c := p.cfg
	if s := p.inCapture.Load(); s != 0 {
		bound := c.Source.FrameTimeout + c.Source.Reopen.Max + time.Minute
		last := max(p.progress.Load(), s)
		if d := now.Sub(time.Unix(0, last)); d > bound {
			return fmt.Sprintf("capture made no progress for %v", d.Round(time.Second))
		}
	}
	if s := p.inSend.Load(); s != 0 {
		n := time.Duration(len(c.Server.Addresses))
		bound := n*c.Server.ConnectTimeout + 3*c.Server.AnswerTimeout + c.Server.Backoff.Max + 2*time.Minute
		if d := now.Sub(time.Unix(0, s)); d > bound {
			return fmt.Sprintf("one frame has been sending for %v", d.Round(time.Second))
		}
	}
	return ""
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

// Snapshot is the agent's state at one moment, for metrics and health.
type Snapshot struct {
	LinkUp         bool
	Connects       uint64
	Reconnects     uint64
	CameraUp       bool
	CameraReopens  uint64
	CameraFailures uint64
	CameraError    string
	CameraDownFor  time.Duration
	Events         uint64
	Coalesced      uint64
	CaptureErrors  uint64
	LastCapture    time.Time
	LastDelivery   time.Time
	Window         int // frames the open connection may have unanswered (0: stop-and-wait)
}

func (a *Agent) snapshot() Snapshot {
	s := Snapshot{LinkUp: a.linkUp.Load(), Events: a.events.Load(),
		LastCapture: unixTime(a.lastCapture.Load()), LastDelivery: unixTime(a.lastDelivery.Load())}
	a.mu.Lock()
	p := a.pipe
	s.Connects, s.Reconnects = a.retiredConnects, a.retiredReconnects
	var ts sender.Stats
	if p != nil {
		ts = p.tx.Stats() // under mu: retire cannot fold p in between
	}
	a.mu.Unlock()
	if p == nil {
		return s
	}
	s.Connects += ts.Connects
	s.Reconnects += ts.Reconnects
	if ts.Connected {
		s.LinkUp = true
	}
	s.Window = ts.Window
	if l := p.loop.Load(); l != nil {
		ls := l.Stats()
		s.Coalesced, s.CaptureErrors = ls.Coalesced, ls.CaptureErrors
	}
	rs := p.src.Stats()
	s.CameraUp = rs.Opens > 0 && !rs.Down
	s.CameraReopens, s.CameraFailures, s.CameraError = rs.Reopens, rs.Failures, rs.LastError
	if rs.Down && !rs.DownSince.IsZero() {
		s.CameraDownFor = time.Since(rs.DownSince)
	}
	return s
}

func unixTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Health is the /healthz answer.
type Health struct {
	Healthy      bool     `json:"healthy"`
	Problems     []string `json:"problems,omitempty"`
	Camera       string   `json:"camera"` // up, down, not-opened
	Link         string   `json:"link"`   // up, down
	Queued       int      `json:"queued"`
	Spooled      int      `json:"spooled"`
	LastCapture  string   `json:"last_capture,omitempty"`
	LastDelivery string   `json:"last_delivery,omitempty"`
}

// Health says whether the agent is doing its job: capturing (for
// continuous and interval triggers: a frame within healthy_within or two
// periods; for event triggers: the camera not down for longer than
// healthy_within) and pushing (nothing queued, or a delivery within
// healthy_within; and not a receiver refusing every frame sent since the
// last delivery, if that was more than healthy_within ago).
func (a *Agent) Health() Health {
	cfg := a.Config()
	s := a.snapshot()
	st := a.queue.Stats()
	within := cfg.HTTP.HealthyWithin
	h := Health{Camera: "not-opened", Link: "down", Queued: st.Pending, Spooled: st.SpoolFrames}
	if s.LinkUp {
		h.Link = "up"
	}
	switch {
	case s.CameraUp:
		h.Camera = "up"
	case s.CameraFailures > 0:
		h.Camera = "down"
	}
	if !s.LastCapture.IsZero() {
		h.LastCapture = s.LastCapture.Format(time.RFC3339Nano)
	}
	if !s.LastDelivery.IsZero() {
		h.LastDelivery = s.LastDelivery.Format(time.RFC3339Nano)
	}
	since := func(t time.Time) time.Duration {
		if t.IsZero() {
			t = a.started
		}
		return time.Since(t)
	}
	switch cfg.Trigger.Type {
	case "continuous", "interval":
		limit := within
		period := cfg.Trigger.Interval
		if cfg.Trigger.Type == "continuous" && cfg.Trigger.FPS > 0 {
			period = time.Duration(float64(time.Second) / cfg.Trigger.FPS)
		}
		limit = max(limit, 2*period)
		if d := since(s.LastCapture); d > limit {
			h.Problems = append(h.Problems, fmt.Sprintf("no frame captured for %v (camera: %s %s)", d.Round(time.Second), h.Camera, s.CameraError))
		}
	default:
		if s.CameraDownFor > within {
			h.Problems = append(h.Problems, fmt.Sprintf("camera down for %v: %s", s.CameraDownFor.Round(time.Second), s.CameraError))
		}
	}
	if st.Pending > 0 {
		if d := since(s.LastDelivery); d > within {
			h.Problems = append(h.Problems, fmt.Sprintf("%d frames queued and none delivered for %v", st.Pending, d.Round(time.Second)))
		}
	}
	// A link that delivers nothing: the receiver answers, but refuses
	// every frame (permanently, so nothing stays queued, or after the
	// payload), and nothing was delivered for healthy_within.
	if n := a.refusedInARow.Load(); n > 0 {
		if d := since(s.LastDelivery); d > within {
			last := ""
			if p := a.lastRefusalIs.Load(); p != nil {
				last = *p
			}
			h.Problems = append(h.Problems, fmt.Sprintf("the receiver refused the last %d frames and none was delivered for %v: %s",
				n, d.Round(time.Second), last))
		}
	}
	h.Healthy = len(h.Problems) == 0
	return h
}

func (a *Agent) logStatus() {
	st := a.queue.Stats()
	s := a.snapshot()
	a.log.Info("status", "captured", a.metrics.captured.Get(), "delivered", a.metrics.sent.Get(),
		"queued", st.Pending, "spooled", st.SpoolFrames, "spool_bytes", st.SpoolBytes,
		"dropped", dropTotal(st)+a.metrics.rejected.Get(), "link_up", s.LinkUp, "camera_up", s.CameraUp)
}

func dropTotal(st queue.Stats) uint64 {
	var n uint64
	for _, v := range st.Dropped {
		n += v
	}
	return n
}
