//go:build unix

package signal

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"framepush/capture"
	"framepush/capture/internal/capturetest"
)

func TestSignalTrigger(t *testing.T) {
	tr := New(syscall.SIGUSR1)
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
	capturetest.CloseUnblocks[capture.Event](t, tr, capture.ErrTriggerClosed)
}

func TestSignalTriggerWithoutSignalsNeverFires(t *testing.T) {
	tr := New()
	defer tr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := tr.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait: %v", err)
	}
}
