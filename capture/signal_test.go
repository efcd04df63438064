//go:build unix

package capture

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestSignalTrigger(t *testing.T) {
	tr := NewSignal(syscall.SIGUSR1)
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ev, err := tr.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Kind != "signal" || ev.Frames != 1 || ev.Time.IsZero() {
		t.Fatalf("event %+v", ev)
	}

	// Close unblocks a pending Wait; later ones fail at once.
	errc := make(chan error, 1)
	go func() {
		_, err := tr.Wait(context.Background())
		errc <- err
	}()
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, ErrTriggerClosed) {
			t.Fatalf("Wait after Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not unblock Wait")
	}
	if err := tr.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if _, err := tr.Wait(context.Background()); !errors.Is(err, ErrTriggerClosed) {
		t.Fatalf("Wait on a closed trigger: %v", err)
	}
}

func TestSignalTriggerWithoutSignalsNeverFires(t *testing.T) {
	tr := NewSignal()
	defer tr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := tr.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait: %v", err)
	}
}
