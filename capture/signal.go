package capture

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"time"
)

// signalTrigger is the Trigger returned by NewSignal.
type signalTrigger struct {
	ch        chan os.Signal
	done      chan struct{}
	closeOnce sync.Once
}

// NewSignal returns a trigger that fires when the process receives one of
// sigs (Kind "signal"), so scripts and cron can ask for a frame with
// `kill -USR1 <pid>`. Signals arriving faster than they are waited for
// collapse into one event, as os/signal delivers them. With no signals it
// never fires (signal.Notify would otherwise relay every signal). Close
// stops the relaying, restoring the default action (for SIGUSR1: exit).
func NewSignal(sigs ...os.Signal) Trigger {
	t := &signalTrigger{ch: make(chan os.Signal, 1), done: make(chan struct{})}
	if len(sigs) > 0 {
		signal.Notify(t.ch, sigs...)
	}
	return t
}

// Wait blocks until a signal arrives.
func (t *signalTrigger) Wait(ctx context.Context) (Event, error) {
	select {
	case <-t.done:
		return Event{}, ErrTriggerClosed
	default:
	}
	select {
	case <-t.ch:
		return Event{Time: time.Now(), Kind: "signal", Frames: 1}, nil
	case <-ctx.Done():
		return Event{}, ctx.Err()
	case <-t.done:
		return Event{}, ErrTriggerClosed
	}
}

// Close stops the signal subscription. It is safe to call more than once.
func (t *signalTrigger) Close() error {
	t.closeOnce.Do(func() {
		signal.Stop(t.ch)
		close(t.done)
	})
	return nil
}
