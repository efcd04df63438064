package e2e

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"framepush/frame"
	"framepush/sender"
)

// testWindow is the window the fault suite runs with, next to
// stop-and-wait: small enough that a connection carries several windows.
var testWindow = sender.Window{Frames: 8, Bytes: 2 << 20}

// windows runs fn once stop-and-wait and once with the window on.
func windows(t *testing.T, fn func(t *testing.T, w sender.Window)) {
	for _, w := range []sender.Window{{}, testWindow} {
		name := "stop-and-wait"
		if w.Frames > 1 {
			name = fmt.Sprintf("window=%d", w.Frames)
		}
		t.Run(name, func(t *testing.T) { fn(t, w) })
	}
}

// submitAll delivers frames through a window the way the agent does:
// Submit in order; a delivered frame is done; any other outcome puts the
// frame back, in order, ahead of those not yet sent (a permanent refusal
// fails the test). It returns when all are delivered or ctx ends.
func submitAll(ctx context.Context, s *sender.Sender, frames []frame.Frame) error {
	var todo, back []int
	for i := range frames {
		todo = append(todo, i)
	}
	var last error
	delivered := 0
	done := func(o sender.Outcome) {
		switch {
		case o.Err == nil:
			delivered++
		case sender.IsPermanent(o.Err):
			last = fmt.Errorf("frame %d refused permanently: %w", o.Tag.(int)+1, o.Err)
		default:
			if !sender.IsUnanswered(o.Err) {
				last = o.Err
			}
			back = append(back, o.Tag.(int))
		}
	}
	for delivered < len(frames) {
		if ctx.Err() != nil {
			return fmt.Errorf("%d of %d delivered: %w (last failure: %v)", delivered, len(frames), ctx.Err(), last)
		}
		if len(todo) == 0 {
			s.Flush(ctx, done)
		} else {
			i := todo[0]
			todo = todo[1:]
			s.Submit(ctx, frames[i], i, done)
		}
		if len(back) > 0 {
			todo = append(back, todo...)
			back = nil
		}
		if last != nil && sender.IsPermanent(last) {
			return last
		}
	}
	return nil
}

// A sender with the window on, to the seed's own server: it asks once (the
// server ignores the token: split()[1]), then speaks the seed's bytes
// stop-and-wait, one frame per connection (auto), and every image is
// stored exactly once.
func TestWindowSenderToSeedServer(t *testing.T) {
	seed := startSeedServer(t)
	s := newSender(t, sender.Options{Addresses: []string{seed.Addr}, Mode: sender.ModeAuto, Window: testWindow, AnswerTimeout: 10 * time.Second})
	sizes := []int{seedIntactMin, 5000, 20000, 65536, 100000, 9999, 70000, 4200}
	payloads := make([][]byte, len(sizes))
	frames := make([]frame.Frame, len(sizes))
	for i, n := range sizes {
		payloads[i] = payload(n, uint64(300+i))
		frames[i] = frameOf(i+1, payloads[i])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := submitAll(ctx, s, frames); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Pipelined != 0 || st.Mode != sender.ModeSeed || st.Failures != 0 || st.Sent != uint64(len(sizes)) {
		t.Errorf("stats %+v: want no window, seed mode, no failure, all sent", st)
	}
	got := seedImages(t, seed.Dir)
	if len(got) != len(payloads) {
		t.Fatalf("seed server stored %d images for %d frames (exactly once expected)", len(got), len(payloads))
	}
	for i := range got {
		if len(got[i]) > len(payloads[i]) || !bytes.Equal(got[i], payloads[i][:len(got[i])]) {
			t.Errorf("image %d: not the payload nor a prefix of it (the seed server's single recv may cut)", i+1)
		}
	}
}
