package agent

import (
	"testing"
	"time"

	"framepush/internal/testutil"
)

// With the window (the default), a receiver restart mid-stream loses and
// reorders nothing: the frames it had not answered go to the new
// receiver first, every captured frame is stored, in capture order, and
// both connections pipelined. With the window off the same holds
// stop-and-wait.
func TestWindowedDeliveryAcrossReceiverRestart(t *testing.T) {
	for _, frames := range []int{64, 0} {
		t.Run(map[int]string{64: "window", 0: "stop-and-wait"}[frames], func(t *testing.T) {
			rv := startRecv(t, "127.0.0.1:0", nil)
			c := testConfig(rv.Addr)
			c.Server.Window.Frames = frames
			c.Trigger.FPS = 100
			r, _ := startAgent(t, c, Options{})
			testutil.WaitFor(t, "30 frames at the first receiver", 30*time.Second, func() bool { return len(rv.Frames()) >= 30 })
			rv.Stop()
			first := rv.Frames()
			rv2 := startRecv(t, rv.Addr, nil)
			testutil.WaitFor(t, "30 frames at the second receiver", 30*time.Second, func() bool { return len(rv2.Frames()) >= 30 })
			pipelined := r.a.currentPipe().tx.Stats().Pipelined
			if w := r.a.snapshot().Window; frames > 1 && w != frames || frames == 0 && w != 0 {
				t.Errorf("framepush_window_frames %d with server.window.frames %d", w, frames)
			}
			if err := r.stop(t); err != nil {
				t.Fatal(err)
			}
			all := append(first, rv2.Frames()...)
			if captured := r.a.metrics.captured.Get(); uint64(len(all)) != captured {
				t.Fatalf("captured %d, stored %d", captured, len(all))
			}
			checkFrames(t, storedFrames(t, all), 160, 120)
			if frames > 1 && pipelined < 2 {
				t.Errorf("%d pipelined connections, want both", pipelined)
			}
			if frames == 0 && pipelined != 0 {
				t.Errorf("%d pipelined connections with the window off", pipelined)
			}
		})
	}
}
