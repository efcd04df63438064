package agent

import (
	"context"
	"fmt"
	"log/slog"
	"syscall"

	"framepush/capture"
	"framepush/capture/command"
	"framepush/capture/dir"
	"framepush/capture/gpio"
	"framepush/capture/signal"
	"framepush/capture/testpattern"
	"framepush/capture/v4l2"
	"framepush/config"
	"framepush/internal/backoff"
	"framepush/queue"
	"framepush/sender"
	"framepush/wire"
)

// This file turns configuration sections into the parts of the pipeline.
// Each function does no I/O beyond what opening the part requires, so a
// reload can build the new parts before it retires the old ones.

// BuildSource is the default Options.NewSource: the configured source
// (NewSource) and trigger (NewTrigger), with their errors prefixed by the
// section at fault.
func BuildSource(cfg config.Config, log *slog.Logger) (Source, capture.Trigger, error) {
	src, err := NewSource(cfg.Source, log.With("part", "source"))
	if err != nil {
		return nil, nil, fmt.Errorf("source: %w", err)
	}
	trig, err := NewTrigger(cfg.Trigger, log.With("part", "trigger"))
	if err != nil {
		src.Close()
		return nil, nil, fmt.Errorf("trigger: %w", err)
	}
	return src, trig, nil
}

// BuildTransport is the default Options.NewTransport: a *sender.Sender for
// the server section. It opens no connection; the first frame does.
func BuildTransport(cfg config.Config, log *slog.Logger) (Transport, error) {
	so, err := SenderOptions(cfg.Server, cfg.Name, log.With("part", "sender"))
	if err != nil {
		return nil, err
	}
	tx, err := sender.New(so)
	if err != nil {
		return nil, configError{err} // only bad options fail New; its errors say "sender: ..." already
	}
	return tx, nil
}

// NewSource returns the configured frame source wrapped in a Reopener, so
// that a lost camera or a dead child process is closed once, backed off
// and reopened, and the agent exits after source.reopen.give_up.
func NewSource(c config.Source, log *slog.Logger) (*capture.Reopener, error) {
	var (
		open func(context.Context) (capture.Source, error)
		name string
	)
	switch c.Type {
	case "testpattern":
		name = "testpattern"
		o := testpattern.Options{Width: c.Width, Height: c.Height, JPEGQuality: c.JPEGQuality, Name: "default"}
		// Fail now on bad options rather than at the first capture.
		probe, err := testpattern.New(o)
		if err != nil {
			return nil, err
		}
		probe.Close()
		open = func(context.Context) (capture.Source, error) { return testpattern.New(o) }
	case "v4l2":
		name = "v4l2:" + c.Device
		open = v4l2.Opener(v4l2.Options{
			Device: c.Device, Format: c.Format, Width: c.Width, Height: c.Height, FPS: c.FPS,
			Buffers: c.Buffers, JPEGQuality: c.JPEGQuality, Controls: c.Controls, FrameTimeout: c.FrameTimeout,
		}, log)
	case "command":
		name = "command:" + c.Command[0]
		o := command.Options{
			Command: c.Command, FrameTimeout: c.FrameTimeout, Logger: log,
		}
		open = func(context.Context) (capture.Source, error) { return command.New(o) }
	case "dir":
		name = "dir:" + c.Dir
		o := dir.Options{Dir: c.Dir, Loop: c.Loop, Logger: log}
		open = func(context.Context) (capture.Source, error) { return dir.New(o) }
	default:
		return nil, fmt.Errorf("source.type %q is unknown (want testpattern, v4l2, command or dir)", c.Type)
	}
	return capture.NewReopener(open, capture.ReopenOptions{
		Name:    name,
		Backoff: backoff.Policy{Initial: c.Reopen.Initial, Max: c.Reopen.Max, Multiplier: 2},
		GiveUp:  c.Reopen.GiveUp,
	}, log), nil
}

// NewTrigger returns the configured trigger, merged with a SIGUSR1 trigger
// when trigger.signal is set.
func NewTrigger(c config.Trigger, log *slog.Logger) (capture.Trigger, error) {
	var t capture.Trigger
	switch c.Type {
	case "continuous":
		t = capture.NewContinuous(c.FPS)
	case "interval":
		t = capture.NewInterval(c.Interval)
	case "signal":
		return signal.New(syscall.SIGUSR1), nil
	case "gpio":
		g := c.GPIO
		o := gpio.Options{
			Line: g.Line, Chip: g.Chip, Edge: g.Edge, Pull: g.Pull, Debounce: g.Debounce,
			Frames: g.Frames, WhileActive: g.WhileActive, ActiveFPS: g.ActiveFPS,
			PreTrigger: g.PreTrigger, Logger: log,
		}
		if g.Offset != nil {
			o.Offset = *g.Offset
		}
		gt, err := gpio.Open(o)
		if err != nil {
			return nil, err
		}
		t = gt
	default:
		return nil, fmt.Errorf("trigger.type %q is unknown (want continuous, interval, gpio or signal)", c.Type)
	}
	if c.Signal {
		t = capture.Merge(t, signal.New(syscall.SIGUSR1))
	}
	return t, nil
}

// LoopOptions maps the trigger section onto the capture loop.
func LoopOptions(c config.Trigger, log *slog.Logger) capture.LoopOptions {
	o := capture.LoopOptions{Logger: log}
	if c.Type == "gpio" {
		o.PreTrigger = c.GPIO.PreTrigger
		o.PreTriggerFPS = c.GPIO.PreTriggerFPS
		o.ActiveFPS = c.GPIO.ActiveFPS
	}
	return o
}

// QueueOptions maps the queue section onto the queue. The config speaks
// in positives (keep_triggered, fsync) where the queue's zero values are
// the safe defaults (NoTriggerPriority, NoFsync).
func QueueOptions(c config.Queue, log *slog.Logger) queue.Options {
	return queue.Options{
		MemoryFrames:      c.MemoryFrames,
		MemoryBytes:       int64(c.MemoryBytes),
		SpoolDir:          c.SpoolDir,
		SpoolMaxBytes:     int64(c.SpoolMaxBytes),
		SpoolMaxFrames:    c.SpoolMaxFrames,
		MaxAge:            c.MaxAge,
		Drop:              queue.DropPolicy(c.Drop),
		NoTriggerPriority: !c.KeepTriggered,
		AlwaysSpool:       c.AlwaysSpool,
		NoFsync:           !c.Fsync,
		MaxAttempts:       maxAttempts(c.MaxAttempts),
		Logger:            log,
	}
}

// maxAttempts maps queue.max_attempts (0: unlimited) onto the queue's
// MaxAttempts (0: the default, negative: unlimited).
func maxAttempts(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// SenderOptions maps the server section onto the sender.
func SenderOptions(c config.Server, name string, log *slog.Logger) (sender.Options, error) {
	term, err := wire.ParseTerminator(c.Terminator)
	if err != nil {
		return sender.Options{}, fmt.Errorf("server.terminator: %w", err)
	}
	sum, err := wire.ParseChecksum(c.Checksum)
	if err != nil {
		return sender.Options{}, fmt.Errorf("server.checksum: %w", err)
	}
	o := sender.Options{
		Addresses:      c.Addresses,
		Mode:           sender.Mode(c.Mode),
		Terminator:     term,
		Extension:      c.Extension,
		Checksum:       sum,
		Name:           name,
		SpreadKey:      spreadKey(c.Spread, name),
		ConnectTimeout: c.ConnectTimeout,
		AnswerTimeout:  c.AnswerTimeout,
		MinThroughput:  int64(c.MinThroughput),
		Window:         sender.Window{Frames: c.Window.Frames, Bytes: int64(c.Window.Bytes)},
		Connections:    c.Connections,
		Backoff:        backoff.Policy{Initial: c.Backoff.Initial, Max: c.Backoff.Max, Multiplier: c.Backoff.Multiplier},
		Logger:         log,
	}
	if c.TLS.Enabled {
		tc, err := sender.TLSConfig(c.TLS.CA, c.TLS.Cert, c.TLS.Key, c.TLS.ServerName, c.TLS.InsecureSkipVerify)
		if err != nil {
			return sender.Options{}, fmt.Errorf("server.tls: %w", err)
		}
		o.TLS = tc
	}
	return o, nil
}

// spreadKey is what the sender hashes to pick its first address:
// server.spread "name" spreads boards by device name.
func spreadKey(spread, name string) string {
	if spread == "name" {
		return name
	}
	return ""
}
