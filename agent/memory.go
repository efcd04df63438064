package agent

import (
	"context"
	"os"
	"runtime/debug"
	"time"
)

// Memory. A board agent should stay small and flat: the target is 15 MiB
// RSS at 1920×1080, 30 frames/s. Go's default (GOGC=100) lets the heap grow
// to twice what is live before collecting; at 1080p the live heap is about
// 3.5 MiB (the frame image and its encoder), so the heap alone reaches
// 7 MiB, and the binary's own pages add about 8 MiB of file-backed RSS.
//
// The agent therefore sets Go's soft memory limit to what it needs right
// now: a base (the frame image and encoder buffers for the configured
// size, plus runtime overhead) plus twice the bytes the queue holds in RAM
// at the moment, re-evaluated twice a second. In steady state the queue
// holds a frame or two and the limit is tight; during an outage without a
// spool the queue may fill its memory_bytes and the limit rises with it,
// so the collector never fights live data. A GOMEMLIMIT or GOGC set in the
// environment wins: the governor then stays out of the way.

// memoryBase is the memory the agent needs besides queued frames: two
// bytes per pixel (a 4:2:2 image for YUYV, a 4:2:0 one plus encoder
// buffers for the test pattern) and 6.5 MiB for the runtime, goroutines,
// HTTP and TLS buffers. Measured (scripts/agentbench.sh): at 640×480 a
// 5.6 MiB limit doubled the CPU per frame (the collector ran all the
// time) while 7 MiB cost nothing; at 1920×1080 10 MiB cost nothing and
// kept RSS at 14.4 MiB.
func memoryBase(width, height int) int64 {
	return int64(width)*int64(height)*2 + 13<<19
}

// governMemory adjusts the soft memory limit until ctx ends. It returns at
// once when the environment sets GOMEMLIMIT or GOGC.
func (a *Agent) governMemory(ctx context.Context) {
	if os.Getenv("GOMEMLIMIT") != "" || os.Getenv("GOGC") != "" {
		a.log.Debug("memory limit left to the environment (GOMEMLIMIT/GOGC set)")
		return
	}
	prev := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(prev)
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		cfg := a.Config()
		src := cfg.Source
		st := a.queue.Stats()
		limit := memoryBase(src.Width, src.Height) + 2*st.MemoryBytes
		if w := cfg.Server.Window; w.Frames > 1 {
			// Frames in a pipelining window that were read back from the
			// spool are in RAM too, up to the window's bytes.
			limit += 2 * min(int64(w.Bytes), st.SpoolBytes)
		}
		debug.SetMemoryLimit(limit)
		a.memLimit.Store(limit)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
