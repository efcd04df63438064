package view

import (
	"strings"
	"testing"
)

// Ids come from the network: any sequence of them must neither panic nor
// grow the tracker beyond its bounds, and the counts must stay coherent.
//
//	go test -run '^$' -fuzz FuzzSeqTracker ./view
func FuzzSeqTracker(f *testing.F) {
	for _, seed := range []string{
		"a-1 a-2 a-5 a-5 a-3", "1 2 3 1 2", "x-18446744073709551615 x-1 x-18446744073709551614",
		"-1 --2 a- a-0 a-+1 a-00001", "f1 f2 f1 r-1024 r-1 r-2048 r-1025",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, ids string) {
		var tr seqTracker
		n := uint64(0)
		for _, id := range strings.Fields(ids) {
			tr.observe(id)
			n++
		}
		if len(tr.runs) > trackedRuns || len(tr.opaque) > opaqueMemory {
			t.Fatalf("%d runs, %d opaque ids kept", len(tr.runs), len(tr.opaque))
		}
		c := tr.seqCounts
		if c.Duplicates+c.Late+c.OutOfWindow > n || c.Runs > n || c.Opaque > n {
			t.Fatalf("counts %+v after %d ids", c, n)
		}
	})
}
