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
//
// Files by job: agent.go (the Agent, New, Run: supervision), pipeline.go
// (start, the capture loop, stop), send.go and sendwindow.go (the send
// loops and settle), reload.go, health.go (watchdog check, Snapshot,
// Health, status line), build.go (configuration into parts), metrics.go,
// snapshot.go (/snapshot.jpg, /stream.mjpg), memory.go, check.go,
// refusals.go.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"framepush/capture"
	"framepush/config"
	"framepush/queue"
)

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
	// NewSource builds a pipeline's source and trigger for cfg (at start
	// and at each reload that rebuilds the pipeline); log is the agent's
	// logger. Nil means BuildSource (build.go): the configured device in a
	// capture.Reopener and the configured trigger.
	NewSource func(cfg config.Config, log *slog.Logger) (Source, capture.Trigger, error)
	// NewTransport builds a pipeline's link to the receivers for cfg. Nil
	// means BuildTransport (build.go): a *sender.Sender. A Transport that
	// is also a WindowTransport reporting Windowed pipelines.
	NewTransport func(cfg config.Config, log *slog.Logger) (Transport, error)
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

// New checks cfg, opens the queue (recovering any spooled frames) and the
// HTTP listener. The camera, trigger and link are opened by Run.
func New(cfg config.Config, opts Options) (*Agent, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Notify == nil {
		opts.Notify = func(state string) { daemon.SdNotify(false, state) }
	}
	if opts.NewSource == nil {
		opts.NewSource = BuildSource
	}
	if opts.NewTransport == nil {
		opts.NewTransport = BuildTransport
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
