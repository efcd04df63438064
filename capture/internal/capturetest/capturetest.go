// Package capturetest holds the test helpers the capture packages share:
// the fake clock of the tickers and the GPIO trigger, and the check that
// Close unblocks a Wait, run against every trigger kind. It imports no
// capture package, so capture's own tests can use it too.
package capturetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// Clock is a fake clock for the ticker (sleeping advances it) and the GPIO
// edge times.
type Clock struct {
	mu     sync.Mutex
	t      time.Time
	sleeps []time.Duration
}

// NewClock returns a Clock reading 2025-01-01 00:00 UTC.
func NewClock() *Clock { return &Clock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Sleep records d and advances the clock by it, at once.
func (c *Clock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	c.sleeps = append(c.sleeps, d)
	c.t = c.t.Add(d)
	c.mu.Unlock()
	return nil
}

// TakeSleeps returns the sleeps recorded since the last call.
func (c *Clock) TakeSleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sleeps
	c.sleeps = nil
	return s
}

// Trigger is capture.Trigger with its event type as a parameter.
type Trigger[E any] interface {
	Wait(ctx context.Context) (E, error)
	Close() error
}

// CloseUnblocks checks that Close unblocks a pending Wait with closed
// (capture.ErrTriggerClosed), that a second Close is harmless and that later
// Waits fail at once. Call it as CloseUnblocks[capture.Event](t, tr, capture.ErrTriggerClosed).
func CloseUnblocks[E any](t *testing.T, tr Trigger[E], closed error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := tr.Wait(context.Background())
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond) // let it block; the result is the same if it has not yet
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, closed) {
			t.Fatalf("Wait after Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not unblock Wait")
	}
	if err := tr.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if _, err := tr.Wait(context.Background()); !errors.Is(err, closed) {
		t.Fatalf("Wait on a closed trigger: %v", err)
	}
}
