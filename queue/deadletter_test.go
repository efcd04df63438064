package queue

import (
	"bytes"
	"strings"
	"testing"
)

// A frame refused MaxAttempts times leaves the queue into the dead-letter
// folder (renamed when spooled, written when only in memory), and the next
// frame comes out of Next.
func TestRefusedFramesMoveToDeadLetters(t *testing.T) {
	dir := t.TempDir()
	q, lb := openQ(t, Options{SpoolDir: dir, MaxAttempts: 2, NoFsync: true})
	q.SetLinkUp(false) // frame 1 goes to the spool file
	put(t, q, mkFrame(1, "continuous", 50))
	q.SetLinkUp(true) // frame 2 stays in memory only
	put(t, q, mkFrame(2, "continuous", 60), mkFrame(3, "continuous", 70))

	for _, seq := range []uint64{1, 2} {
		for attempt := 1; attempt <= 2; attempt++ {
			it := next(t, q)
			if it.Frame.Seq != seq {
				t.Fatalf("attempt %d: Next gave seq %d, want %d (a refused frame is retried first until its limit)", attempt, it.Frame.Seq, seq)
			}
			dead, err := q.Refused(it, "receiver refused frame: internal: disk error")
			if err != nil || dead != (attempt == 2) {
				t.Fatalf("seq %d attempt %d: dead %v, err %v", seq, attempt, dead, err)
			}
		}
	}
	wantSeqs(t, "after the dead letters", drain(t, q), 3)
	if n := len(frameFiles(t, dir)); n != 0 {
		t.Fatalf("%d frame files left in the spool", n)
	}
	st := q.Stats()
	if st.DeadLettered != 2 || st.DeadLetters != 2 {
		t.Fatalf("stats: dead-lettered %d, in the folder %d; want 2, 2", st.DeadLettered, st.DeadLetters)
	}
	if n := len(lb.lines("WARN", "moved to the dead-letter folder")); n != 2 {
		t.Fatalf("%d warnings, want one per frame:\n%s", n, lb)
	}
	dls, err := ListDeadLetters(dir)
	if err != nil || len(dls) != 2 {
		t.Fatalf("ListDeadLetters: %v %v", dls, err)
	}
	for i, d := range dls {
		f, err := ReadDeadLetter(dir, d.File)
		if err != nil {
			t.Fatal(err)
		}
		checkFrame(t, f)
		if f.Seq != uint64(i+1) || d.Attempts != 2 || !strings.HasSuffix(d.ID, "-"+strconvU(f.Seq)) ||
			!strings.Contains(d.LastRefusal, "disk error") || d.Bytes != int64(len(f.Data)) || !d.Captured.Equal(f.Time) {
			t.Fatalf("dead letter %d: %+v for seq %d", i, d, f.Seq)
		}
	}
	q.Close()

	// Reopened: the dead letters are not sent again, but still counted.
	q2, _ := openQ(t, Options{SpoolDir: dir, NoFsync: true})
	if st := q2.Stats(); st.Pending != 0 || st.DeadLetters != 2 {
		t.Fatalf("after reopening: %+v", st)
	}
	if err := RemoveDeadLetter(dir, dls[0].File); err != nil {
		t.Fatal(err)
	}
	if dls, _ := ListDeadLetters(dir); len(dls) != 1 {
		t.Fatalf("after removing one: %v", dls)
	}
}

// Without a spool a dead letter is dropped and counted under its reason.
func TestRefusedFrameMemoryOnly(t *testing.T) {
	q, _ := openQ(t, Options{MaxAttempts: 1})
	put(t, q, mkFrame(1, "continuous", 10), mkFrame(2, "continuous", 10))
	if dead, err := q.Refused(next(t, q), "ERR checksum"); dead || err != nil {
		t.Fatalf("memory only: dead %v, err %v", dead, err)
	}
	wantDropped(t, q, map[string]uint64{ReasonDeadLetter: 1})
	wantSeqs(t, "after the drop", drain(t, q), 2)
}

// Unlimited attempts (negative) keep retrying.
func TestRefusedUnlimited(t *testing.T) {
	q, _ := openQ(t, Options{MaxAttempts: -1})
	put(t, q, mkFrame(1, "continuous", 10))
	for range 20 {
		if dead, err := q.Refused(next(t, q), "ERR internal"); dead || err != nil {
			t.Fatalf("dead %v, err %v", dead, err)
		}
	}
	if got := drain(t, q); len(got) != 1 || !bytes.Equal(got[0].Data, payload("test", 1, 10)) {
		t.Fatalf("frame lost after unlimited refusals")
	}
}
