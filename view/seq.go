package view

import (
	"strconv"
	"strings"
)

// Frame ids from framepush agents are "<run>-<seq>": run changes at every
// agent start and holds no '-', seq counts from 1 and is consecutive within
// a run. A gap in seq is frames lost, a repeat is a resend. Older agents
// sent plain numbers (a seq with no run). Any other id is opaque: it can
// only be recognised again (a duplicate).
//
// seqTracker counts both with bounded memory: per run a window of the last
// seqWindow seqs (a bitmap) and the highest seq seen, for the last
// trackedRuns runs (an agent that restarts sends its spooled frames of the
// previous run first); for opaque ids, the last opaqueMemory ids.
const (
	seqWindow    = 1024
	trackedRuns  = 4
	opaqueMemory = 256
)

type runWindow struct {
	run  string
	base uint64 // first seq seen: where counting starts
	hi   uint64 // highest seq seen
	bits [seqWindow / 64]uint64
}

func (w *runWindow) bit(s uint64) (word int, mask uint64) {
	i := s % seqWindow
	return int(i / 64), 1 << (i % 64)
}

func (w *runWindow) set(s uint64)      { i, m := w.bit(s); w.bits[i] |= m }
func (w *runWindow) has(s uint64) bool { i, m := w.bit(s); return w.bits[i]&m != 0 }
func (w *runWindow) clear(s uint64)    { i, m := w.bit(s); w.bits[i] &^= m }

// seqCounts is what the tracker found so far.
type seqCounts struct {
	Lost        uint64 `json:"lost"`          // seqs skipped and not (yet) arrived
	Duplicates  uint64 `json:"duplicates"`    // ids seen again
	Late        uint64 `json:"late"`          // arrived after a higher seq (filled a gap, or older than the first seen)
	OutOfWindow uint64 `json:"out_of_window"` // too far behind the newest to tell
	Runs        uint64 `json:"runs"`          // agent runs seen (restarts + 1)
	Opaque      uint64 `json:"opaque"`        // ids in no known form
	NoID        uint64 `json:"no_id"`         // frames without an id (seed clients)
}

type seqTracker struct {
	seqCounts
	runs   []*runWindow // most recent first, at most trackedRuns
	opaque map[string]struct{}
	ring   []string // opaque ids in arrival order, for eviction
	next   int
}

// parseID splits "<run>-<seq>" at the last '-'; a plain number is a seq of
// the unnamed run. ok is false for ids of any other form.
func parseID(id string) (run string, seq uint64, ok bool) {
	num := id
	if i := strings.LastIndexByte(id, '-'); i >= 0 {
		run, num = id[:i], id[i+1:]
		if run == "" {
			return "", 0, false
		}
	}
	if num == "" || num[0] == '+' {
		return "", 0, false
	}
	seq, err := strconv.ParseUint(num, 10, 64)
	if err != nil || seq == 0 {
		return "", 0, false
	}
	return run, seq, true
}

// observe records one frame id. It is O(1) but for a jump of seqs, which
// clears at most seqWindow bits.
func (t *seqTracker) observe(id string) {
	if id == "" {
		t.NoID++
		return
	}
	run, s, ok := parseID(id)
	if !ok {
		t.observeOpaque(id)
		return
	}
	w := t.window(run, s)
	switch {
	case w == nil:
		return // a new run: s is its baseline
	case s > w.hi:
		gap := s - w.hi - 1
		t.Lost += gap
		for k := uint64(0); k < min(gap, seqWindow); k++ {
			w.clear(w.hi + 1 + k)
		}
		w.set(s)
		w.hi = s
	case w.hi-s >= seqWindow:
		t.OutOfWindow++
	case w.has(s):
		t.Duplicates++
	default:
		w.set(s)
		t.Late++
		if s > w.base && t.Lost > 0 {
			t.Lost-- // a gap filled
		}
	}
}

// window finds run's window, making it the most recent; for a run not
// tracked it starts a new window with s and returns nil.
func (t *seqTracker) window(run string, s uint64) *runWindow {
	for i, w := range t.runs {
		if w.run != run {
			continue
		}
		// Old agents' plain numbers restart at 1 with the agent.
		if run == "" && s == 1 && w.hi > 1 {
			break
		}
		copy(t.runs[1:i+1], t.runs[:i])
		t.runs[0] = w
		return w
	}
	t.Runs++
	w := &runWindow{run: run, base: s, hi: s}
	w.set(s)
	// Drop a stale window of the same (unnamed) run, then the oldest.
	for i, o := range t.runs {
		if o.run == run {
			t.runs = append(t.runs[:i], t.runs[i+1:]...)
			break
		}
	}
	if len(t.runs) == trackedRuns {
		t.runs = t.runs[:trackedRuns-1]
	}
	t.runs = append([]*runWindow{w}, t.runs...)
	return nil
}

func (t *seqTracker) observeOpaque(id string) {
	t.Opaque++
	if t.opaque == nil {
		t.opaque = make(map[string]struct{}, opaqueMemory)
		t.ring = make([]string, opaqueMemory)
	}
	if _, seen := t.opaque[id]; seen {
		t.Duplicates++
		return
	}
	if old := t.ring[t.next]; old != "" {
		delete(t.opaque, old)
	}
	t.ring[t.next] = id
	t.next = (t.next + 1) % opaqueMemory
	t.opaque[id] = struct{}{}
}
