package signal

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"time"

	"framepush/capture"
	"framepush/frame"
)

// trigger is the capture.Trigger returned by New.
type trigger struct {
	ch        chan os.Signal
	done      chan struct{}
	closeOnce sync.Once
}

// New returns a trigger that fires when the process receives one of
// sigs (Kind "signal"), so scripts and cron can ask for a frame with
// `kill -USR1 <pid>`. Signals arriving faster than they are waited for
// collapse into one event, as os/signal delivers them. With no signals it
// never fires (signal.Notify would otherwise relay every signal). Close
// stops the relaying, restoring the default action (for SIGUSR1: exit).
func New(sigs ...os.Signal) capture.Trigger {
	t := &trigger{ch: make(chan os.Signal, 1), done: make(chan struct{})}
	if len(sigs) > 0 {
		signal.Notify(t.ch, sigs...)
	}
	return t
}

// Wait blocks until a signal arrives.
func (t *trigger) Wait(ctx context.Context) (capture.Event, error) {
	select {
	case <-t.done:
		return capture.Event{}, capture.ErrTriggerClosed
	default:
	}
	select {
	case <-t.ch:
		return capture.Event{Time: time.Now(), Kind: frame.Signal, Frames: 1}, nil
	case <-ctx.Done():
		return capture.Event{}, ctx.Err()
	case <-t.done:
		return capture.Event{}, capture.ErrTriggerClosed
	}
}

// Close stops the signal subscription. It is safe to call more than once.
func (t *trigger) Close() error {
	t.closeOnce.Do(func() {
		signal.Stop(t.ch)
		close(t.done)
	})
	return nil
}
