package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"framepush/capture"
	"framepush/capture/mjpeg"
	"framepush/frame"
	"framepush/internal/logging"
)

// Command-source defaults.
const (
	// DefaultFrameTimeout is how long a Capture waits for a frame
	// before declaring the child stalled. rpicam-vid needs a second or two
	// to bring a camera up, so this is generous.
	DefaultFrameTimeout = 10 * time.Second
	// DefaultKillGrace is the time between SIGTERM and SIGKILL.
	DefaultKillGrace = 2 * time.Second
)

const (
	stderrLineMax   = 512 // longer stderr lines are cut (ffmpeg can print huge ones)
	stderrPerSecond = 50  // stderr lines logged per second and child; the rest are counted
	stderrTail      = 5   // stderr lines kept for the error that reports a death
	groupPoll       = 10 * time.Millisecond
)

// Options configures a Source.
type Options struct {
	// Command is the program and its arguments, e.g.
	// ["rpicam-vid", "-t", "0", "--codec", "mjpeg", "-o", "-"] or
	// ["ffmpeg", "-f", "v4l2", "-i", "/dev/video0", "-c:v", "mjpeg", "-f", "mjpeg", "-"].
	// Command[0] is looked up in PATH. Prefer running the program directly
	// (or `exec` it from sh -c): the whole process group is stopped, but
	// only the direct child gets the parent-death signal.
	Command []string
	Env     []string // extra "KEY=value" pairs on top of the agent's environment
	Dir     string   // working directory; empty means the agent's

	MaxFrameSize int           // larger frames are dropped; 0 means mjpeg.DefaultSplitLimit
	FrameTimeout time.Duration // a Capture waiting this long without a frame stops the child; 0 means DefaultFrameTimeout
	KillGrace    time.Duration // SIGTERM to SIGKILL; 0 means DefaultKillGrace
	Logger       *slog.Logger  // child stderr and lifecycle; nil discards
}

// Stats counts what a Source did. Frames = Delivered +
// Discarded + Rejected.
type Stats struct {
	Starts        uint64           // children started: 1 once New returned
	Exits         uint64           // children that ended, for any reason: 0 or 1
	Frames        uint64           // complete frames read from the children
	Delivered     uint64           // frames returned by Capture
	Discarded     uint64           // frames that arrived while no Capture was waiting, or after it gave up
	Rejected      uint64           // frames a waiting Capture could not use: no frame header, broken segments
	Split         mjpeg.SplitStats // splitter counters summed over all children
	StderrLines   uint64           // stderr lines logged
	StderrDropped uint64           // stderr lines over the rate limit, counted only
	PID           int              // current child's pid; 0 when none runs
}

// Source runs a program that writes an MJPEG stream (concatenated
// JPEGs) to its standard output and turns the stream into frames: the way
// to use CSI cameras on current Raspberry Pi OS, through
// `rpicam-vid -t 0 --codec mjpeg -o -`, or anything ffmpeg can read.
//
// Every delivered frame passes mjpeg.Fix (Huffman tables inserted when the
// stream leaves them out, as MJPEG copied from UVC cameras does) and
// mjpeg.Validate, so it decodes on its own.
//
// Freshness: the child's output is read continuously, so the pipe never
// holds old frames, and a frame that completes while no Capture is waiting
// is dropped at once (it is never kept for later). Capture therefore
// returns the first frame whose last byte arrived after Capture began;
// frame.Frame.Time is that arrival time. Its exposure may still precede the call
// by the child's own pipeline latency, typically one frame interval.
//
// A Source runs one child. A child that exits, closes its output or sends
// nothing for FrameTimeout is reported as an error wrapping
// capture.ErrDeviceGone, by that Capture and every later one: the source
// does not restart it. Restarting is the capture.Reopener's job, which the
// agent wraps every source in: it closes this Source, waits its backoff and
// opens a new one, so one owner decides when to retry, with one backoff and
// one log line per death (this source logs the death only at debug level).
// Close stops the whole process group: SIGTERM, then SIGKILL after
// KillGrace, and reaps the child. Linux only.
type Source struct {
	opts   Options
	path   string // resolved Command[0]
	name   string // program base name, for messages
	source string
	log    *slog.Logger
	now    func() time.Time

	mu     sync.Mutex
	child  *process         // nil once the child is gone
	waiter chan frame.Frame // the waiting Capture's mailbox; nil when none waits
	dead   error            // how the child ended, once it has
	stats  Stats
	closed bool

	seq uint64 // touched only by the goroutine calling Capture
}

// process is one run of the program.
type process struct {
	cmd    *exec.Cmd
	pid    int
	out    *os.File      // read end of the child's stdout
	errOut *os.File      // read end of the child's stderr
	exited chan struct{} // closed once the leader is reaped
	done   chan struct{} // closed once the group is gone and both pipes are drained

	// Written before done is closed, read after.
	waitErr error
	readErr error
	tail    []string

	mu        sync.Mutex
	reason    string // why we stopped it; empty if it ended by itself
	killTimer *time.Timer
	finished  bool // the group has been dealt with: no more signals
}

// hooks lets tests replace the clock.
type hooks struct {
	now func() time.Time
}

// New checks opts, finds the program and starts it, so that
// a camera that takes a while to come up is warm by the first Capture.
func New(opts Options) (*Source, error) {
	return newSource(opts, hooks{})
}

func newSource(opts Options, h hooks) (*Source, error) {
	if !supported {
		return nil, errors.New("capture: the command source needs Linux process groups; this build is not for Linux")
	}
	if len(opts.Command) == 0 || opts.Command[0] == "" {
		return nil, errors.New("capture: command source: no command given " +
			"(set source.command, e.g. [rpicam-vid, -t, \"0\", --codec, mjpeg, -o, \"-\"])")
	}
	switch {
	case opts.MaxFrameSize < 0:
		return nil, fmt.Errorf("capture: command source: max frame size %d is negative", opts.MaxFrameSize)
	case opts.FrameTimeout < 0:
		return nil, fmt.Errorf("capture: command source: frame timeout %v is negative", opts.FrameTimeout)
	case opts.KillGrace < 0:
		return nil, fmt.Errorf("capture: command source: kill grace %v is negative", opts.KillGrace)
	}
	for _, kv := range opts.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return nil, fmt.Errorf("capture: command source: environment entry %q is not KEY=value", kv)
		}
	}
	path, err := exec.LookPath(opts.Command[0])
	if err != nil {
		return nil, fmt.Errorf("capture: command source: cannot run %q: %w", opts.Command[0], err)
	}
	if opts.MaxFrameSize == 0 {
		opts.MaxFrameSize = mjpeg.DefaultSplitLimit
	}
	if opts.FrameTimeout == 0 {
		opts.FrameTimeout = DefaultFrameTimeout
	}
	if opts.KillGrace == 0 {
		opts.KillGrace = DefaultKillGrace
	}
	c := &Source{
		opts: opts,
		path: path,
		name: filepath.Base(opts.Command[0]),
		log:  opts.Logger,
		now:  h.now,
	}
	c.source = "command:" + c.name
	if c.log == nil {
		c.log = logging.Discard
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.startLocked(); err != nil {
		return nil, err
	}
	return c, nil
}

// Capture returns the first frame that arrives after the call began. See
// the type's documentation for the freshness rule and restarts.
func (c *Source) Capture(ctx context.Context) (frame.Frame, error) {
	if err := ctx.Err(); err != nil {
		return frame.Frame{}, err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return frame.Frame{}, fmt.Errorf("capture: %s: capture after close", c.source)
	}
	if c.dead != nil {
		err := c.dead
		c.mu.Unlock()
		return frame.Frame{}, err
	}
	child := c.child
	c.mu.Unlock()

	select {
	case <-child.done: // it died while nobody was asking
		return frame.Frame{}, c.retire(child)
	default:
	}

	mailbox := make(chan frame.Frame, 1)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return frame.Frame{}, fmt.Errorf("capture: %s: capture after close", c.source)
	}
	c.waiter = mailbox
	c.mu.Unlock()
	return c.await(ctx, child, mailbox)
}

// await waits for the registered mailbox to receive a frame.
func (c *Source) await(ctx context.Context, child *process, mailbox chan frame.Frame) (frame.Frame, error) {
	stall := time.NewTimer(c.opts.FrameTimeout)
	defer stall.Stop()
	select {
	case f := <-mailbox:
		return c.deliver(f), nil
	case <-child.done:
		if f, ok := c.unregister(mailbox); ok { // the last frame raced the exit
			return c.deliver(f), nil
		}
		return frame.Frame{}, c.retire(child)
	case <-ctx.Done():
		if _, ok := c.unregister(mailbox); ok {
			c.mu.Lock()
			c.stats.Discarded++
			c.mu.Unlock()
		}
		return frame.Frame{}, ctx.Err()
	case <-stall.C:
		if f, ok := c.unregister(mailbox); ok {
			return c.deliver(f), nil
		}
		child.stop(fmt.Sprintf("stalled: no frame within %v", c.opts.FrameTimeout), c.opts.KillGrace)
		select {
		case <-child.done:
			return frame.Frame{}, c.retire(child)
		case <-ctx.Done(): // a later Capture reports the death
			return frame.Frame{}, ctx.Err()
		}
	}
}

// unregister withdraws the mailbox; if a frame was already posted to it,
// that frame is returned.
func (c *Source) unregister(mailbox chan frame.Frame) (frame.Frame, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.waiter == mailbox {
		c.waiter = nil
		return frame.Frame{}, false
	}
	select {
	case f := <-mailbox:
		return f, true
	default:
		return frame.Frame{}, false
	}
}

func (c *Source) deliver(f frame.Frame) frame.Frame {
	c.seq++
	f.Seq = c.seq
	f.Source = c.source
	f.Format = frame.JPEG
	c.mu.Lock()
	c.stats.Delivered++
	c.mu.Unlock()
	return f
}

// retire forgets a child whose group is gone and describes the death,
// which every later Capture returns too. It logs at debug level only: the
// Reopener that restarts the source logs the death (this error) once.
func (c *Source) retire(child *process) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead != nil {
		return c.dead
	}
	c.child = nil
	c.stats.Exits++
	c.stats.PID = 0
	c.dead = child.deathErr(c.name)
	c.log.Debug("child ended", "source", c.source, "pid", child.pid, "err", c.dead)
	return c.dead
}

// Close stops the child's whole process group (SIGTERM, then SIGKILL after
// the grace period) and reaps it. It is safe to call more than once.
func (c *Source) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	child := c.child
	c.mu.Unlock()
	if child == nil {
		return nil
	}
	child.stop("stopped by Close", c.opts.KillGrace)
	<-child.done
	c.mu.Lock()
	if c.child == child {
		c.child = nil
		c.stats.Exits++
		c.stats.PID = 0
	}
	c.mu.Unlock()
	return nil
}

// Stats returns the counters so far. Unlike Capture, it is safe to call
// from any goroutine.
func (c *Source) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// startLocked starts a child and the goroutines that serve it. c.mu is
// held.
func (c *Source) startLocked() error {
	outR, outW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("capture: %s: creating stdout pipe: %w: %w", c.source, err, capture.ErrDeviceGone)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return fmt.Errorf("capture: %s: creating stderr pipe: %w: %w", c.source, err, capture.ErrDeviceGone)
	}
	cmd := exec.Command(c.path, c.opts.Command[1:]...)
	cmd.Args[0] = c.opts.Command[0]
	if len(c.opts.Env) > 0 {
		cmd.Env = append(os.Environ(), c.opts.Env...)
	}
	cmd.Dir = c.opts.Dir
	cmd.Stdout, cmd.Stderr = outW, errW // stdin stays /dev/null
	cmd.SysProcAttr = procAttr()
	err = cmd.Start()
	outW.Close() // the child holds its own copies
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return fmt.Errorf("capture: %s: starting %q: %w: %w", c.source, c.path, err, capture.ErrDeviceGone)
	}
	child := &process{
		cmd:    cmd,
		pid:    cmd.Process.Pid,
		out:    outR,
		errOut: errR,
		exited: make(chan struct{}),
		done:   make(chan struct{}),
	}
	c.child = child
	c.stats.Starts++
	c.stats.PID = child.pid
	c.log.Info("started child", "source", c.source, "pid", child.pid, "command", c.opts.Command)
	readDone, errDone := make(chan struct{}), make(chan struct{})
	go c.readFrames(child, readDone)
	go c.logStderr(child, errDone)
	go c.supervise(child, readDone, errDone)
	return nil
}

// readFrames splits the child's stdout and hands each frame to the waiting
// Capture, or drops it when none waits.
func (c *Source) readFrames(child *process, done chan<- struct{}) {
	defer close(done)
	sp := mjpeg.NewSplitter(child.out, c.opts.MaxFrameSize)
	var prev mjpeg.SplitStats
	for {
		data, err := sp.Next()
		arrived := c.now()
		st := sp.Stats()
		c.mu.Lock()
		c.stats.Split.AddGrowth(st, prev)
		prev = st
		if err != nil {
			c.mu.Unlock()
			child.readErr = err
			break
		}
		c.stats.Frames++
		if c.waiter == nil || c.child != child {
			c.stats.Discarded++
			c.mu.Unlock()
			continue
		}
		// The copy the frame.Frame owns is also where missing Huffman tables go.
		fixed, err := mjpeg.Fix(make([]byte, 0, len(data)+mjpeg.StandardDHTSize), data)
		if err == nil {
			err = mjpeg.Validate(fixed)
		}
		if err != nil {
			c.stats.Rejected++
			c.mu.Unlock()
			c.log.Warn("dropping undecodable frame from child", "source", c.source, "pid", child.pid, "err", err)
			continue
		}
		c.waiter <- frame.Frame{Data: fixed, Time: arrived}
		c.waiter = nil
		c.mu.Unlock()
	}
	// Output ended. Normally the leader is exiting; one that closed its
	// stdout and lives on is useless and is stopped.
	t := time.NewTimer(c.opts.KillGrace)
	defer t.Stop()
	select {
	case <-child.exited:
	case <-t.C:
		child.stop(fmt.Sprintf("closed its output (%v) but kept running", child.readErr), c.opts.KillGrace)
	}
}

// logStderr logs the child's stderr line by line (\n or \r ends a line, as
// ffmpeg's progress uses \r), cutting long lines and rate-limiting, and
// keeps the last few lines for the death report.
func (c *Source) logStderr(child *process, done chan<- struct{}) {
	defer close(done)
	buf := make([]byte, 4096)
	line := make([]byte, 0, stderrLineMax)
	cut := false
	var window time.Time
	var inWindow, dropped int
	flushDropped := func() {
		if dropped > 0 {
			c.log.Warn("child stderr lines dropped", "source", c.source, "pid", child.pid,
				"dropped", dropped, "limit_per_s", stderrPerSecond)
			dropped = 0
		}
	}
	emit := func() {
		if len(line) == 0 && !cut {
			return
		}
		text := string(line)
		if cut {
			text += " [cut]"
		}
		line, cut = line[:0], false
		if len(child.tail) == stderrTail {
			copy(child.tail, child.tail[1:])
			child.tail = child.tail[:stderrTail-1]
		}
		child.tail = append(child.tail, text)
		if now := time.Now(); now.Sub(window) >= time.Second {
			flushDropped()
			window, inWindow = now, 0
		}
		c.mu.Lock()
		if inWindow >= stderrPerSecond {
			dropped++
			c.stats.StderrDropped++
			c.mu.Unlock()
			return
		}
		inWindow++
		c.stats.StderrLines++
		c.mu.Unlock()
		c.log.Info("child stderr", "source", c.source, "pid", child.pid, "line", text)
	}
	for {
		n, err := child.errOut.Read(buf)
		for _, b := range buf[:n] {
			switch {
			case b == '\n' || b == '\r':
				emit()
			case len(line) < stderrLineMax:
				line = append(line, b)
			default:
				cut = true
			}
		}
		if err != nil {
			emit()
			flushDropped()
			return
		}
	}
}

// supervise reaps the child, clears out its process group and closes
// child.done once nothing of it is left.
func (c *Source) supervise(child *process, readDone, errDone <-chan struct{}) {
	child.waitErr = child.cmd.Wait()
	close(child.exited)
	// The leader is gone. Whatever it started must go too, or it would keep
	// the camera (and the pipes) busy against the restart.
	if groupAlive(child.pid) {
		_ = signalGroup(child.pid, sigTerm)
		deadline := time.Now().Add(c.opts.KillGrace)
		for groupAlive(child.pid) && time.Now().Before(deadline) {
			time.Sleep(groupPoll)
		}
		_ = signalGroup(child.pid, sigKill)
	}
	child.mu.Lock()
	child.finished = true
	if child.killTimer != nil {
		child.killTimer.Stop()
	}
	child.mu.Unlock()
	// A process that left the group (setsid) could hold the pipes open
	// forever: let the readers drain for the grace period, then cut them off.
	cutoff := time.Now().Add(c.opts.KillGrace)
	if child.out.SetReadDeadline(cutoff) != nil {
		child.out.Close()
	}
	if child.errOut.SetReadDeadline(cutoff) != nil {
		child.errOut.Close()
	}
	<-readDone
	<-errDone
	child.out.Close()
	child.errOut.Close()
	close(child.done)
}

// stop asks the child's process group to terminate and arms the SIGKILL.
// Only the first call has an effect.
func (child *process) stop(reason string, grace time.Duration) {
	child.mu.Lock()
	defer child.mu.Unlock()
	if child.finished || child.reason != "" {
		return
	}
	child.reason = reason
	_ = signalGroup(child.pid, sigTerm)
	child.killTimer = time.AfterFunc(grace, func() {
		child.mu.Lock()
		defer child.mu.Unlock()
		if !child.finished {
			_ = signalGroup(child.pid, sigKill)
		}
	})
}

// deathErr describes how the child ended. Call it after child.done.
func (child *process) deathErr(name string) error {
	status := "exit status 0"
	if child.waitErr != nil {
		status = child.waitErr.Error()
	}
	child.mu.Lock()
	reason := child.reason
	child.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "capture: command %s (pid %d) ", name, child.pid)
	if reason != "" {
		fmt.Fprintf(&b, "was stopped: %s (%s)", reason, status)
	} else {
		fmt.Fprintf(&b, "ended (%s)", status)
	}
	if child.readErr != nil && !errors.Is(child.readErr, io.EOF) && !errors.Is(child.readErr, os.ErrDeadlineExceeded) {
		fmt.Fprintf(&b, "; reading its output: %v", child.readErr)
	}
	if len(child.tail) > 0 {
		fmt.Fprintf(&b, "; last stderr: %q", strings.Join(child.tail, " | "))
	}
	return fmt.Errorf("%s: %w", b.String(), capture.ErrDeviceGone)
}
