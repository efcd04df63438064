// Package capture turns cameras and triggers into frames.
//
// Data flows one way: a Trigger says when, a Source says what, and Loop joins
// the two into a stream of frame.Frames handed to the caller (the agent's
// queue).
//
//	trigger → capture → queue → sender → receiver → store
//
// This package holds the contracts (Source, Trigger, Event), the loop that
// joins them (Looper), the Reopener that keeps a source alive, and the clock
// triggers (NewContinuous, NewInterval, Merge). Each source and hardware
// trigger kind is its own package below: v4l2, command, dir and testpattern
// are Sources, gpio and signal are Triggers, and mjpeg holds the JPEG helpers
// they share. None of those is imported here, so the loop and its users link
// no camera or GPIO library.
//
// Sources own their device. Exactly one goroutine calls a Source's methods;
// none of them is safe for concurrent use, mirroring the V4L2 library.
package capture

import (
	"context"
	"errors"
	"time"

	"framepush/frame"
)

// Source produces frames.
type Source interface {
	// Capture returns the next frame exposed after Capture was called: never
	// a stale frame left in a driver queue while the source sat idle. It
	// blocks until a frame is ready or ctx is done. A source that lost its
	// device returns an error wrapping ErrDeviceGone; the caller decides
	// whether to reopen (see Reopener).
	Capture(ctx context.Context) (frame.Frame, error)
	// Close releases the device. It is safe to call more than once.
	Close() error
}

// Event is one firing of a Trigger.
type Event struct {
	Time   time.Time         // when the trigger fired (edge time for GPIO)
	Kind   frame.TriggerKind // Continuous, Interval, GPIO or Signal
	Frames int               // frames to capture for this event; 0 means 1
	// Pre is how many buffered pre-trigger frames to emit before the event's
	// own frames (motion's pre_capture). 0 means none.
	Pre int
	// Active reports whether the condition that fired the event still
	// holds (a GPIO line still at its active level); Loop keeps capturing
	// while it returns true. Nil means a one-shot event: just Frames frames.
	// It may be called from another goroutine than the trigger's and must
	// return false once the trigger is closed.
	Active func() bool
	// ActiveFPS is the capture rate while Active returns true; 0 means
	// LoopOptions.ActiveFPS.
	ActiveFPS float64
}

// Trigger says when to capture.
type Trigger interface {
	// Wait blocks until the next event or until ctx is done, in which case
	// it returns ctx.Err().
	Wait(ctx context.Context) (Event, error)
	// Close releases the trigger's resources (a GPIO line, a signal
	// subscription). It is safe to call more than once.
	Close() error
}

// ErrDeviceGone marks errors after which a source's device must be closed
// and reopened: unplugged camera (ENODEV), I/O error (EIO), a stalled stream
// (no frame within the timeout), a dead child process.
var ErrDeviceGone = errors.New("capture device gone")

// ErrExhausted ends a finite source: a directory source that is not looping
// returns it once every file has been replayed, and Loop stops on it.
var ErrExhausted = errors.New("capture: directory source has replayed every image")
