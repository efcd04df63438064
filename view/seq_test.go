package view

import (
	"fmt"
	"testing"
)

func TestParseID(t *testing.T) {
	for _, c := range []struct {
		id  string
		run string
		seq uint64
		ok  bool
	}{
		{"k3x9-1", "k3x9", 1, true},
		{"k3x9-000042", "k3x9", 42, true},
		{"42", "", 42, true},
		{"000042", "", 42, true},
		{"a-b-7", "a-b", 7, true}, // parsed from the last '-'
		{"k3x9-0", "", 0, false},
		{"k3x9-", "", 0, false},
		{"-5", "", 0, false},
		{"k3x9-+5", "", 0, false},
		{"f1", "", 0, false},
		{"k3x9-99999999999999999999999", "", 0, false},
	} {
		run, seq, ok := parseID(c.id)
		if run != c.run || seq != c.seq || ok != c.ok {
			t.Errorf("parseID(%q) = %q, %d, %v; want %q, %d, %v", c.id, run, seq, ok, c.run, c.seq, c.ok)
		}
	}
}

func track(ids ...string) seqCounts {
	var t seqTracker
	for _, id := range ids {
		t.observe(id)
	}
	return t.seqCounts
}

func TestSeqGapsAndRepeats(t *testing.T) {
	for _, c := range []struct {
		name string
		ids  []string
		want seqCounts
	}{
		{"consecutive", []string{"r-1", "r-2", "r-3", "r-4"}, seqCounts{Runs: 1}},
		{"a gap of two", []string{"r-1", "r-2", "r-5", "r-6"}, seqCounts{Runs: 1, Lost: 2}},
		{"a resend", []string{"r-1", "r-2", "r-2", "r-3"}, seqCounts{Runs: 1, Duplicates: 1}},
		{"a resend of an older one", []string{"r-1", "r-2", "r-3", "r-1"}, seqCounts{Runs: 1, Duplicates: 1}},
		{"a gap filled late", []string{"r-1", "r-3", "r-2", "r-4"}, seqCounts{Runs: 1, Late: 1}},
		{"gaps and repeats", []string{"r-1", "r-2", "r-4", "r-4", "r-7", "r-5", "r-7"}, seqCounts{Runs: 1, Lost: 2, Duplicates: 2, Late: 1}},
		{"starts mid-run: no loss before the first", []string{"r-100", "r-101"}, seqCounts{Runs: 1}},
		{"older than the first seen", []string{"r-100", "r-99", "r-99"}, seqCounts{Runs: 1, Late: 1, Duplicates: 1}},
		{"a restart", []string{"a-1", "a-2", "b-1", "b-2"}, seqCounts{Runs: 2}},
		{"the old run's spool after a restart", []string{"a-1", "a-3", "b-1", "a-2", "a-4", "b-2", "b-4"}, seqCounts{Runs: 2, Lost: 1, Late: 1}},
		{"plain numbers", []string{"1", "2", "4", "4"}, seqCounts{Runs: 1, Lost: 1, Duplicates: 1}},
		{"plain numbers across an old agent's restart", []string{"1", "2", "3", "1", "2"}, seqCounts{Runs: 2}},
		{"opaque ids", []string{"f1", "f2", "f1"}, seqCounts{Opaque: 3, Duplicates: 1}},
		{"no id", []string{"", ""}, seqCounts{NoID: 2}},
	} {
		if got := track(c.ids...); got != c.want {
			t.Errorf("%s %v: got %+v, want %+v", c.name, c.ids, got, c.want)
		}
	}
}

func TestSeqBoundedMemory(t *testing.T) {
	var tr seqTracker
	// A jump far beyond the window counts every seq skipped, and a seq
	// behind the window is reported, not guessed.
	tr.observe("r-1")
	tr.observe("r-5000")
	tr.observe("r-2")
	if tr.Lost != 4998 || tr.OutOfWindow != 1 {
		t.Fatalf("after a jump: %+v", tr.seqCounts)
	}
	// Many runs and opaque ids: memory stays at the limits.
	for i := range 100 {
		tr.observe(fmt.Sprintf("run%d-1", i))
		tr.observe(fmt.Sprintf("opaque%d", i*10))
	}
	for i := range 10 * opaqueMemory {
		tr.observe(fmt.Sprintf("x%d", i))
	}
	if len(tr.runs) != trackedRuns || len(tr.opaque) != opaqueMemory {
		t.Fatalf("%d runs, %d opaque ids kept; want %d and %d", len(tr.runs), len(tr.opaque), trackedRuns, opaqueMemory)
	}
	if tr.Runs != 101 {
		t.Fatalf("runs %d, want 101", tr.Runs)
	}
}
