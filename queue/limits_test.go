package queue

import (
	"errors"
	"strings"
	"testing"
	"time"

	"framepush/frame"
)

// spec describes a frame to put: its trigger and payload size.
type spec struct {
	trigger frame.TriggerKind
	size    int
}

// putSpecs puts frames seq 1, 2, ... and returns the seqs Put refused.
func putSpecs(t *testing.T, q *Queue, specs ...spec) (refused []uint64) {
	t.Helper()
	for i, s := range specs {
		seq := uint64(i + 1)
		err := q.Put(mkFrame(seq, s.trigger, s.size))
		switch {
		case err == nil:
		case errors.Is(err, ErrDropped):
			refused = append(refused, seq)
		default:
			t.Fatalf("put seq %d: %v", seq, err)
		}
	}
	return refused
}

func n(count int, trigger frame.TriggerKind, size int) []spec {
	s := make([]spec, count)
	for i := range s {
		s[i] = spec{trigger, size}
	}
	return s
}

// Every limit and both policies, checked frame by frame: which seqs are
// kept, which dropped, under which reason, and that each drop is logged.
func TestLimitsExact(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opt      Options
		linkDown bool
		frames   []spec
		kept     []uint64
		refused  []uint64 // Put returned ErrDropped
		dropped  []uint64 // every seq lost, refused included
		reason   string
		files    int // spool files left before draining
	}{
		{
			name:   "memory frames, oldest",
			opt:    Options{MemoryFrames: 3},
			frames: n(5, "interval", 10),
			kept:   []uint64{3, 4, 5}, dropped: []uint64{1, 2}, reason: ReasonFullOldest,
		},
		{
			name:   "memory frames, newest",
			opt:    Options{MemoryFrames: 3, Drop: DropNewest},
			frames: n(5, "interval", 10),
			kept:   []uint64{1, 2, 3}, refused: []uint64{4, 5}, dropped: []uint64{4, 5}, reason: ReasonFullNewest,
		},
		{
			// 10+20+30+40 fill 100 bytes; 50 needs 1, 2 and 3 to go;
			// 60 then needs 4 and 5 to go.
			name:   "memory bytes, oldest",
			opt:    Options{MemoryFrames: 100, MemoryBytes: 100},
			frames: []spec{{"interval", 10}, {"interval", 20}, {"interval", 30}, {"interval", 40}, {"interval", 50}, {"interval", 60}},
			kept:   []uint64{6}, dropped: []uint64{1, 2, 3, 4, 5}, reason: ReasonFullOldest,
		},
		{
			name:   "memory bytes, newest",
			opt:    Options{MemoryFrames: 100, MemoryBytes: 100, Drop: DropNewest},
			frames: []spec{{"interval", 10}, {"interval", 20}, {"interval", 30}, {"interval", 40}, {"interval", 1}, {"interval", 0}},
			kept:   []uint64{1, 2, 3, 4, 6}, refused: []uint64{5}, dropped: []uint64{5}, reason: ReasonFullNewest,
		},
		{
			// Link down: 1-3 fill the spool, 4-5 fall back to memory,
			// then the oldest spooled frames make room.
			name:     "spool frames, oldest",
			opt:      Options{MemoryFrames: 2, SpoolMaxFrames: 3},
			linkDown: true,
			frames:   n(7, "interval", 10),
			kept:     []uint64{3, 4, 5, 6, 7}, dropped: []uint64{1, 2}, reason: ReasonFullOldest, files: 3,
		},
		{
			name:     "spool frames, newest",
			opt:      Options{MemoryFrames: 2, SpoolMaxFrames: 3, Drop: DropNewest},
			linkDown: true,
			frames:   n(7, "interval", 10),
			kept:     []uint64{1, 2, 3, 4, 5}, refused: []uint64{6, 7}, dropped: []uint64{6, 7}, reason: ReasonFullNewest, files: 3,
		},
		{
			// Link up: 1 in memory, 2-3 spill (80 bytes). 4 fits
			// nowhere: dropping 1 frees memory. 5: dropping 2 frees 40
			// spool bytes.
			name:   "spool bytes, oldest",
			opt:    Options{MemoryFrames: 1, SpoolMaxBytes: 100},
			frames: n(5, "interval", 40),
			kept:   []uint64{3, 4, 5}, dropped: []uint64{1, 2}, reason: ReasonFullOldest, files: 2,
		},
		{
			name:   "spool bytes, newest",
			opt:    Options{MemoryFrames: 1, SpoolMaxBytes: 100, Drop: DropNewest},
			frames: n(5, "interval", 40),
			kept:   []uint64{1, 2, 3}, refused: []uint64{4, 5}, dropped: []uint64{4, 5}, reason: ReasonFullNewest, files: 2,
		},
		{
			name:   "always spool frames, oldest",
			opt:    Options{AlwaysSpool: true, SpoolMaxFrames: 3},
			frames: n(5, "interval", 10),
			kept:   []uint64{3, 4, 5}, dropped: []uint64{1, 2}, reason: ReasonFullOldest, files: 3,
		},
		{
			name:   "always spool bytes, newest",
			opt:    Options{AlwaysSpool: true, SpoolMaxBytes: 25, Drop: DropNewest},
			frames: n(4, "interval", 10),
			kept:   []uint64{1, 2}, refused: []uint64{3, 4}, dropped: []uint64{3, 4}, reason: ReasonFullNewest, files: 2,
		},
		// Triggered frames are spared while untriggered ones can go.
		{
			name:   "priority, oldest",
			opt:    Options{MemoryFrames: 3},
			frames: []spec{{"gpio", 1}, {"interval", 1}, {"gpio", 1}, {"interval", 1}, {"gpio", 1}, {"continuous", 1}, {"signal", 1}},
			// 4 evicts 2; 5 evicts 4; 6 finds no untriggered frame but
			// itself; 7 evicts the oldest triggered, 1.
			kept: []uint64{3, 5, 7}, refused: []uint64{6}, dropped: []uint64{1, 2, 4, 6}, reason: ReasonFullOldest,
		},
		{
			name:   "priority, newest",
			opt:    Options{MemoryFrames: 3, Drop: DropNewest},
			frames: []spec{{"gpio", 1}, {"interval", 1}, {"interval", 1}, {"pre-trigger", 1}, {"interval", 1}, {"gpio", 1}, {"gpio", 1}},
			// 4 evicts the newest untriggered, 3; 5 is refused; 6
			// evicts 2; 7 finds only triggered frames: refused.
			kept: []uint64{1, 4, 6}, refused: []uint64{5, 7}, dropped: []uint64{2, 3, 5, 7}, reason: ReasonFullNewest,
		},
		{
			name:   "no priority, oldest",
			opt:    Options{MemoryFrames: 3, NoTriggerPriority: true},
			frames: []spec{{"gpio", 1}, {"interval", 1}, {"gpio", 1}, {"interval", 1}, {"gpio", 1}},
			kept:   []uint64{3, 4, 5}, dropped: []uint64{1, 2}, reason: ReasonFullOldest,
		},
		{
			name:   "no priority, newest",
			opt:    Options{MemoryFrames: 3, NoTriggerPriority: true, Drop: DropNewest},
			frames: []spec{{"interval", 1}, {"interval", 1}, {"interval", 1}, {"gpio", 1}},
			kept:   []uint64{1, 2, 3}, refused: []uint64{4}, dropped: []uint64{4}, reason: ReasonFullNewest,
		},
		{
			name:     "priority in the spool",
			opt:      Options{MemoryFrames: 1, SpoolMaxFrames: 2},
			linkDown: true,
			// 1, 2 spooled, 3 in memory; 4 evicts 2 (untriggered),
			// 5 evicts 3 (untriggered, in memory) and takes its place.
			frames: []spec{{"gpio", 1}, {"interval", 1}, {"interval", 1}, {"gpio", 1}, {"gpio", 1}},
			kept:   []uint64{1, 4, 5}, dropped: []uint64{2, 3}, reason: ReasonFullOldest, files: 2,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.opt.AlwaysSpool || tc.opt.SpoolMaxFrames > 0 || tc.opt.SpoolMaxBytes > 0 {
				tc.opt.SpoolDir = t.TempDir()
			}
			q, lb := openQ(t, tc.opt)
			if tc.linkDown {
				q.SetLinkUp(false)
			}
			refused := putSpecs(t, q, tc.frames...)
			if !equal(refused, tc.refused) {
				t.Fatalf("Put refused %v, want %v", refused, tc.refused)
			}
			st := q.Stats()
			o := tc.opt.WithDefaults()
			if st.MemoryFrames > o.MemoryFrames || st.MemoryBytes > o.MemoryBytes ||
				st.SpoolFrames > o.SpoolMaxFrames || st.SpoolBytes > o.SpoolMaxBytes {
				t.Fatalf("limits exceeded: %+v", st)
			}
			if tc.opt.SpoolDir != "" {
				wantFiles(t, tc.opt.SpoolDir, tc.files)
			}
			if st.Enqueued != uint64(len(tc.frames)-len(tc.refused)) {
				t.Fatalf("enqueued %d", st.Enqueued)
			}
			wantDropped(t, q, map[string]uint64{tc.reason: uint64(len(tc.dropped))})
			for _, s := range tc.dropped {
				if l := lb.lines("frame dropped", "reason="+tc.reason, seqAttr(s), "trigger="); len(l) != 1 {
					t.Fatalf("drop of seq %d logged %d times:\n%s", s, len(l), lb)
				}
			}
			wantSeqs(t, "kept", drain(t, q), tc.kept...)
			if tc.opt.SpoolDir != "" {
				wantFiles(t, tc.opt.SpoolDir, 0)
			}
		})
	}
}

func equal(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestTooLarge(t *testing.T) {
	q, lb := openQ(t, Options{MemoryBytes: 100})
	err := q.Put(mkFrame(1, "gpio", 101))
	wantErrIs(t, err, ErrTooLarge)
	if !strings.Contains(err.Error(), "101 bytes, more than the 100") || !strings.Contains(err.Error(), "MemoryBytes") {
		t.Fatalf("unclear error: %v", err)
	}
	put(t, q, mkFrame(2, "gpio", 100))
	wantDropped(t, q, map[string]uint64{ReasonTooLarge: 1})
	if len(lb.lines("reason=too-large", seqAttr(1))) != 1 {
		t.Fatalf("not logged:\n%s", lb)
	}
	wantSeqs(t, "kept", drain(t, q), 2)

	// The smaller of the two byte limits applies when there is a spool.
	q2, _ := openQ(t, Options{MemoryBytes: 100, SpoolDir: t.TempDir(), SpoolMaxBytes: 50})
	err = q2.Put(mkFrame(1, "gpio", 51))
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "SpoolMaxBytes") {
		t.Fatalf("got %v", err)
	}

	long := mkFrame(3, "gpio", 1)
	long.Source = strings.Repeat("x", 70000)
	if err := q.Put(long); err == nil || !strings.Contains(err.Error(), "Source is 70000 bytes long") {
		t.Fatalf("overlong Source: %v", err)
	}
}

func TestMaxAge(t *testing.T) {
	for _, spooled := range []bool{false, true} {
		name := "memory"
		if spooled {
			name = "spool"
		}
		t.Run(name, func(t *testing.T) {
			clk := &fakeClock{t: t0}
			o := Options{MaxAge: 10 * time.Second, Now: clk.Now}
			if spooled {
				o.SpoolDir = t.TempDir()
			}
			q, lb := openQ(t, o)
			if spooled {
				q.SetLinkUp(false)
			}
			at := func(seq uint64) frame.Frame { f := mkFrame(seq, "interval", 8); f.Time = clk.Now(); return f }
			put(t, q, at(1))
			clk.Add(5 * time.Second)
			put(t, q, at(2))
			clk.Add(5 * time.Second)
			if st := q.Stats(); st.Pending != 2 || st.OldestAge != 10*time.Second {
				t.Fatalf("at exactly MaxAge nothing expires: %+v", st)
			}
			clk.Add(time.Nanosecond)
			it, err := q.Next(t.Context()) // the check that expires seq 1
			if err != nil {
				t.Fatal(err)
			}
			if it.Frame.Seq != 2 {
				t.Fatalf("got seq %d, want 2 (1 expired)", it.Frame.Seq)
			}
			wantDropped(t, q, map[string]uint64{ReasonExpired: 1})
			if len(lb.lines("reason=expired", seqAttr(1))) != 1 {
				t.Fatalf("expiry not logged:\n%s", lb)
			}
			if spooled {
				wantFiles(t, o.SpoolDir, 1)
			}
			// In flight, a frame does not expire under the sender.
			clk.Add(time.Minute)
			if st := q.Stats(); st.Pending != 1 || st.Dropped[ReasonExpired] != 1 {
				t.Fatalf("in-flight frame expired: %+v", st)
			}
			q.Nack(it)
			if st := q.Stats(); st.Pending != 0 || st.Dropped[ReasonExpired] != 2 || st.OldestAge != 0 {
				t.Fatalf("after Nack: %+v", st)
			}
			if spooled {
				wantFiles(t, o.SpoolDir, 0)
			}
			// A frame already too old is refused at Put.
			old := at(3)
			old.Time = clk.Now().Add(-11 * time.Second)
			wantErrIs(t, q.Put(old), ErrDropped)
			wantDropped(t, q, map[string]uint64{ReasonExpired: 3})
		})
	}
}
