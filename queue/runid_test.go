package queue

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"framepush/wire"
)

// openRun opens dir (or memory only when dir is ""), puts frames seq
// 1..n (each restart numbers from 1 again, as the agent does), hands out
// and acks the first ack of them, and closes; it returns every id handed
// out by Next, by seq.
func openRun(t *testing.T, dir string, clk *fakeClock, n, ack int) (ids map[uint64]string, recovered []string) {
	t.Helper()
	q, err := Open(Options{SpoolDir: dir, Now: clk.Now, NoFsync: true, MemoryFrames: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	rec := int(q.Stats().Recovered)
	for i := 1; i <= n; i++ {
		f := mkFrame(uint64(i), "continuous", 10)
		f.Time = clk.Now()
		put(t, q, f)
	}
	ids = map[uint64]string{}
	for k := 0; q.Stats().Pending-q.Stats().InFlight > 0; k++ {
		it, err := q.Next(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if k < rec {
			recovered = append(recovered, it.ID)
		} else {
			ids[it.Frame.Seq] = it.ID
		}
		if k < rec+ack {
			q.Ack(it)
		} else {
			q.Nack(it)
			break
		}
	}
	return ids, recovered
}

func checkID(t *testing.T, id string) (run string) {
	t.Helper()
	run, seq, ok := strings.Cut(id, "-")
	if !ok || !wire.ValidToken(id) || run == "" || strings.Contains(seq, "-") || seq == "" {
		t.Fatalf("id %q is not <run>-<seq>", id)
	}
	return run
}

// Frame ids used to be the sequence number alone, starting at 1 on every
// start: frames left in the spool shared ids with the next run's.
func TestFrameIDsUniqueAcrossRestartsAndClockJumps(t *testing.T) {
	dir := t.TempDir()
	clk := &fakeClock{t: t0}
	seen := map[string]bool{}
	runs := map[string]bool{}
	var prevIDs map[uint64]string
	for run := 0; run < 4; run++ {
		if run == 2 {
			clk.Add(-24 * time.Hour) // a Pi without RTC boots with an old clock
		}
		ids, recovered := openRun(t, dir, clk, 3, 1)
		for _, id := range recovered {
			// A frame from an earlier run keeps that run's id.
			if !runs[checkID(t, id)] || (prevIDs[1] != "" && id == prevIDs[1]) {
				t.Fatalf("run %d: recovered frame id %q is not of an earlier run (%v)", run, id, runs)
			}
		}
		var r string
		for seq, id := range ids {
			r = checkID(t, id)
			if !strings.HasSuffix(id, "-"+strconvU(seq)) {
				t.Fatalf("id %q for seq %d", id, seq)
			}
			if seen[id] {
				t.Fatalf("run %d: id %q repeats an earlier one", run, id)
			}
			seen[id] = true
		}
		if runs[r] {
			t.Fatalf("run %d reuses the run %q", run, r)
		}
		runs[r] = true
		prevIDs = ids
	}

	// A wiped run state (a new card, a deleted file): new tag, still no
	// repeat.
	if err := os.Remove(filepath.Join(dir, runStateName)); err != nil {
		t.Fatal(err)
	}
	ids, _ := openRun(t, dir, clk, 3, 3)
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("after the run state was wiped, id %q repeats", id)
		}
	}

	// Memory only: nothing to count in, fresh randomness every start.
	a, _ := openRun(t, "", clk, 1, 1)
	b, _ := openRun(t, "", clk, 1, 1)
	if a[1] == b[1] {
		t.Fatalf("two memory-only runs gave frame 1 the same id %q", a[1])
	}
}

func strconvU(n uint64) string { return FrameID("x", 0, n)[len("x.0-"):] }
