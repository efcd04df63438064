//go:build linux

package queue

import (
	"slices"
	"testing"

	"framepush/frame"
)

// policySize is large enough that three frames fill smallFS's 2 MiB tmpfs
// (600 000 bytes round up to 147 pages of 4 KiB) and a fourth does not
// fit, so that the full-file-system path sees the same state as the
// others: three frames queued, room for them only, a fourth arriving.
const policySize = 600_000

// droppedSeqs returns the seqs the log says were dropped as full.
func droppedSeqs(lb *logBuf, last uint64) []uint64 {
	var out []uint64
	for s := uint64(1); s <= last; s++ {
		if len(lb.lines("frame dropped", "reason=full-", seqAttr(s))) > 0 {
			out = append(out, s)
		}
	}
	return out
}

// Every path that makes room asks the one policy which frame goes: for the
// same queued frames and the same arriving one, the memory limit, the
// spool limit, limits lowered before Open, the spool at Close and a full
// spool file system drop the same frame under the same reason.
func TestEveryPathPicksTheSameVictim(t *testing.T) {
	const g, c = frame.GPIO, frame.Continuous
	for _, tc := range []struct {
		name   string
		drop   DropPolicy
		noPrio bool
		queued [3]frame.TriggerKind // seqs 1-3
		next   frame.TriggerKind    // seq 4, arriving when 1-3 fill the queue
		victim uint64
	}{
		{"untriggered, oldest", DropOldest, false, [3]frame.TriggerKind{c, c, c}, c, 1},
		{"untriggered, newest", DropNewest, false, [3]frame.TriggerKind{c, c, c}, c, 4},
		{"event arrives, oldest", DropOldest, false, [3]frame.TriggerKind{g, c, c}, g, 2},
		{"event arrives, newest", DropNewest, false, [3]frame.TriggerKind{g, c, c}, g, 3},
		{"only events queued, oldest", DropOldest, false, [3]frame.TriggerKind{g, g, g}, c, 4},
		{"only events queued, newest", DropNewest, false, [3]frame.TriggerKind{g, g, g}, c, 4},
		{"all events, oldest", DropOldest, false, [3]frame.TriggerKind{g, g, g}, g, 1},
		{"all events, newest", DropNewest, false, [3]frame.TriggerKind{g, g, g}, g, 4},
		{"one untriggered, newest", DropNewest, false, [3]frame.TriggerKind{c, g, g}, g, 1},
		{"no priority, oldest", DropOldest, true, [3]frame.TriggerKind{g, c, c}, g, 1},
		{"no priority, newest", DropNewest, true, [3]frame.TriggerKind{g, c, c}, g, 4},
	} {
		frames := func() []frame.Frame {
			var fs []frame.Frame
			for i, k := range append(tc.queued[:], tc.next) {
				fs = append(fs, mkFrame(uint64(i+1), k, policySize))
			}
			return fs
		}
		base := Options{Drop: tc.drop, NoTriggerPriority: tc.noPrio}
		reason := ReasonFullOldest
		if tc.drop == DropNewest {
			reason = ReasonFullNewest
		}
		paths := []struct {
			name string
			run  func(t *testing.T) *logBuf
		}{
			{"memory limit", func(t *testing.T) *logBuf {
				o := base
				o.MemoryFrames = 3
				q, lb := openQ(t, o)
				for _, f := range frames() {
					q.Put(f)
				}
				return lb
			}},
			{"spool limit", func(t *testing.T) *logBuf {
				o := base
				o.SpoolDir, o.AlwaysSpool, o.SpoolMaxFrames, o.NoFsync = t.TempDir(), true, 3, true
				q, lb := openQ(t, o)
				for _, f := range frames() {
					q.Put(f)
				}
				return lb
			}},
			{"limit lowered before open", func(t *testing.T) *logBuf {
				o := base
				o.SpoolDir, o.AlwaysSpool, o.NoFsync = t.TempDir(), true, true
				q, _ := openQ(t, o)
				put(t, q, frames()...)
				q.Close()
				o.AlwaysSpool, o.SpoolMaxFrames = false, 3
				_, lb := openQ(t, o)
				return lb
			}},
			{"spool at close", func(t *testing.T) *logBuf {
				o := base
				o.SpoolDir, o.SpoolMaxFrames, o.NoFsync = t.TempDir(), 3, true
				q, lb := openQ(t, o)
				put(t, q, frames()...) // link up: all in memory
				q.Close()
				return lb
			}},
			{"full file system", func(t *testing.T) *logBuf {
				o := base
				o.SpoolDir, o.AlwaysSpool, o.MemoryFrames, o.NoFsync = smallFS(t), true, 3, true
				q, lb := openQ(t, o)
				for _, f := range frames() {
					q.Put(f)
				}
				return lb
			}},
		}
		for _, p := range paths {
			t.Run(tc.name+"/"+p.name, func(t *testing.T) {
				lb := p.run(t)
				if got := droppedSeqs(lb, 4); !slices.Equal(got, []uint64{tc.victim}) {
					t.Fatalf("dropped %v, want [%d]:\n%s", got, tc.victim, lb)
				}
				if len(lb.lines("frame dropped", "reason="+reason, seqAttr(tc.victim))) != 1 {
					t.Fatalf("seq %d not dropped as %s:\n%s", tc.victim, reason, lb)
				}
			})
		}
	}
}
