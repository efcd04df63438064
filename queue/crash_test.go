package queue

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"framepush/frame"
)

const (
	crashDirEnv  = "FRAMEPUSH_QUEUE_CRASH_DIR"
	crashModeEnv = "FRAMEPUSH_QUEUE_CRASH_MODE"
	crashMemory  = 4    // MemoryFrames in the child
	crashTarget  = 150  // frames the parent waits for before killing
	crashCap     = 3000 // the child stops putting here and waits to be killed
)

func crashFrame(seq uint64) frame.Frame {
	trig := frame.Interval
	if seq%5 == 0 {
		trig = frame.GPIO
	}
	return frame.Frame{Data: payload("crash", seq, 200+int(seq%97)*37), Format: "jpeg", Seq: seq,
		Time: t0.Add(time.Duration(seq) * 33 * time.Millisecond), Source: "crash", Trigger: trig}
}

// TestCrashChild is the agent half of TestCrashRecovery, run as a separate
// process: it puts frames forever and reports each one Put acknowledged.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("helper process for TestCrashRecovery")
	}
	mode := os.Getenv(crashModeEnv)
	q, err := Open(Options{SpoolDir: dir, MemoryFrames: crashMemory, AlwaysSpool: mode == "always"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if mode == "link-down" {
		q.SetLinkUp(false)
	}
	out := bufio.NewWriter(os.Stdout)
	for seq := uint64(1); seq <= crashCap; seq++ {
		if err := q.Put(crashFrame(seq)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Fprintf(out, "put %d\n", seq)
		out.Flush()
	}
	select {} // wait for SIGKILL
}

// TestCrashRecovery SIGKILLs a process mid-stream and checks that every
// frame it had spooled comes back intact and in order, and that what was
// only in memory is all that is lost.
func TestCrashRecovery(t *testing.T) {
	for _, tc := range []struct {
		mode      string
		firstKept uint64 // frames before it were only in memory when killed
	}{
		{"always", 1},
		{"link-down", 1},
		{"memory-full", crashMemory + 1}, // link up, no consumer: the first frames stay in RAM
	} {
		t.Run(tc.mode, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashModeEnv+"="+tc.mode)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var acked uint64
			sc := bufio.NewScanner(stdout)
			for acked < crashTarget && sc.Scan() {
				if s, ok := strings.CutPrefix(sc.Text(), "put "); ok {
					acked, _ = strconv.ParseUint(s, 10, 64)
				}
			}
			// Kill while the child is still writing (it runs ahead of
			// what we have read).
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			if acked < crashTarget {
				t.Fatalf("child stopped after %d frames: %s", acked, stderr.String())
			}

			q, lb := openQ(t, Options{SpoolDir: dir})
			st := q.Stats()
			if st.Dropped[ReasonCorrupt] != 0 {
				t.Fatalf("a SIGKILL left corrupt files: %+v", st.Dropped)
			}
			got := drain(t, q) // checks every payload
			if len(got) == 0 || got[0].Seq != tc.firstKept {
				t.Fatalf("recovered %d frames starting at %v, want start at %d", len(got), seqs(got[:min(len(got), 1)]), tc.firstKept)
			}
			for i, f := range got {
				want := crashFrame(tc.firstKept + uint64(i))
				if f.Seq != want.Seq || f.Trigger != want.Trigger || f.Format != want.Format ||
					f.Source != want.Source || !f.Time.Equal(want.Time) {
					t.Fatalf("frame %d: got %+v, want seq %d", i, f, want.Seq)
				}
			}
			if last := got[len(got)-1].Seq; last < acked {
				t.Fatalf("recovered up to seq %d, but the child had acknowledged %d", last, acked)
			}
			t.Logf("%s: child acknowledged %d frames before the kill was sent, %d recovered, torn writes cleaned: %d",
				tc.mode, acked, len(got), len(lb.lines("unfinished spool writes")))
		})
	}
}
