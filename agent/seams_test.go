package agent

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"framepush/capture"
	"framepush/capture/testpattern"
	"framepush/config"
	"framepush/frame"
	"framepush/internal/backoff"
	"framepush/internal/testutil"
)

// countedTrigger fires n one-shot events, each after the previous one's
// frame was captured (faster ones would merge, by design), then waits for
// ctx.
type countedTrigger struct {
	left   atomic.Int64
	fired  bool
	served <-chan struct{} // one receive per frame captured
}

func (t *countedTrigger) Wait(ctx context.Context) (capture.Event, error) {
	if t.left.Add(-1) >= 0 {
		if t.fired {
			select {
			case <-t.served:
			case <-ctx.Done():
				return capture.Event{}, ctx.Err()
			}
		}
		t.fired = true
		return capture.Event{Time: time.Now(), Kind: frame.Signal}, nil
	}
	<-ctx.Done()
	return capture.Event{}, ctx.Err()
}

func (t *countedTrigger) Close() error { return nil }

// unpluggedOnce is a test pattern camera whose device goes away once, at
// the capture numbered failAt of all its openings together.
type unpluggedOnce struct {
	capture.Source
	captures *atomic.Int64
	failAt   int64
	served   chan<- struct{}
}

func (s *unpluggedOnce) Capture(ctx context.Context) (frame.Frame, error) {
	if s.captures.Add(1) == s.failAt {
		return frame.Frame{}, fmt.Errorf("test camera unplugged: %w", capture.ErrDeviceGone)
	}
	f, err := s.Source.Capture(ctx)
	if err == nil {
		s.served <- struct{}{}
	}
	return f, err
}

// The agent drives whatever source and trigger Options.NewSource gives it
// through the one Reopener: n events give exactly n frames, in order, and
// a device lost in between is reopened once, logged once and counted in
// the camera's metrics, with no frame lost or doubled.
func TestInjectedSourceAndTriggerThroughTheReopener(t *testing.T) {
	const events = 12
	rv := newMemRecv("127.0.0.1:1")
	c := testConfig(rv.Addr)
	c.Source.Reopen = config.Reopen{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond, GiveUp: time.Minute}
	var captures atomic.Int64
	var builds atomic.Int64
	served := make(chan struct{}, events+1)
	newSource := func(cfg config.Config, log *slog.Logger) (Source, capture.Trigger, error) {
		builds.Add(1)
		open := func(context.Context) (capture.Source, error) {
			tp, err := testpattern.New(testpattern.Options{Width: cfg.Source.Width, Height: cfg.Source.Height, Name: "default"})
			if err != nil {
				return nil, err
			}
			return &unpluggedOnce{Source: tp, captures: &captures, failAt: 5, served: served}, nil
		}
		src := capture.NewReopener(open, capture.ReopenOptions{Name: "test camera",
			Backoff: backoff.Policy{Initial: cfg.Source.Reopen.Initial, Max: cfg.Source.Reopen.Max, Multiplier: 2}, GiveUp: cfg.Source.Reopen.GiveUp}, log.With("part", "source"))
		trig := &countedTrigger{served: served}
		trig.left.Store(events)
		return src, trig, nil
	}
	r, logs := startAgent(t, c, rv.options(Options{NewSource: newSource}))
	testutil.WaitFor(t, "every event's frame delivered", 30*time.Second, func() bool { return len(rv.Frames()) >= events })
	s := r.a.snapshot()
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	got := rv.Frames()
	if len(got) != events || r.a.metrics.captured.Get() != events || r.a.events.Load() != events {
		t.Fatalf("%d events: %d captured, %d delivered, %d counted; want %d of each",
			events, r.a.metrics.captured.Get(), len(got), r.a.events.Load(), events)
	}
	checkFrames(t, got, 160, 120)
	if builds.Load() != 1 {
		t.Errorf("NewSource called %d times, want once", builds.Load())
	}
	if !s.CameraUp || s.CameraFailures != 1 || s.CameraReopens != 1 {
		t.Errorf("camera up %v, failures %d, reopens %d; want up after 1 loss and 1 reopen", s.CameraUp, s.CameraFailures, s.CameraReopens)
	}
	if n := strings.Count(logs.String(), "capture device lost"); n != 1 {
		t.Errorf("%d lines about the lost device, want one:\n%s", n, logs.String())
	}
}

// The reload rules: the fixed sections (queue, http, log) are compared by
// value, the rest by content, so a configuration loaded again, with its
// own copies of the slices and pointers, changes nothing.
func TestReloadRules(t *testing.T) {
	old := testConfig("127.0.0.1:1")
	off := 4
	old.Trigger.GPIO.Offset = &off
	same := old
	same.Server.Addresses = append([]string(nil), old.Server.Addresses...)
	sameOff := 4
	same.Trigger.GPIO.Offset = &sameOff
	if f := fixedSectionsChanged(old, same); len(f) != 0 || !unchanged(old, same) {
		t.Fatalf("a copy: fixed %v, unchanged %v; want none and true", f, unchanged(old, same))
	}
	nc := same
	nc.Server.Addresses = []string{"127.0.0.1:2"}
	if unchanged(old, nc) || len(fixedSectionsChanged(old, nc)) != 0 {
		t.Fatalf("a new address must rebuild the pipeline and touch no fixed section")
	}
	nc = same
	nc.Queue.MemoryFrames++
	nc.HTTP.Listen = "127.0.0.1:9"
	nc.Log.Level = "debug"
	if f := fixedSectionsChanged(old, nc); strings.Join(f, ",") != "queue,http,log" {
		t.Fatalf("fixed sections changed: %v, want queue,http,log", f)
	}
}
