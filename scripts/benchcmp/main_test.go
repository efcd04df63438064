package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sample = `goos: linux
BenchmarkRawTCP/size=1MiB-2          	    2773	    461196 ns/op	2273.60 MB/s	      2000 frames/s	       0 B/op	       0 allocs/op
BenchmarkSendReceive/fsync=false/size=1MiB-2          	    1552	    812481 ns/op	1290.59 MB/s	      1000 frames/s	    1808 B/op	      24 allocs/op
BenchmarkSendReceive/fsync=true/size=1MiB-2           	     808	   2440413 ns/op	 429.67 MB/s	       500.0 frames/s	    2051 B/op	      27 allocs/op
BenchmarkSeedMode/term=none/size=16KiB-2              	      56	  20979279 ns/op	   0.78 MB/s	        47.67 frames/s	   12316 B/op	      82 allocs/op
PASS
`

func TestRatios(t *testing.T) {
	res := parse(strings.NewReader(sample))
	if got := res["BenchmarkRawTCP/size=1MiB"]["frames/s"]; got != 2000 {
		t.Fatalf("raw frames/s = %v", got)
	}
	var b strings.Builder
	if err := ratios(res, &b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"1MiB", "0.50x", "0.25x", "term=none/size=16KiB", "48 frames/s"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if err := ratios(parse(strings.NewReader("PASS\n")), &b); err == nil {
		t.Error("no error for output without the e2e benchmarks")
	}
}

func TestGenIntact(t *testing.T) {
	sent, stored := t.TempDir(), t.TempDir()
	if err := run([]string{"gen", sent, "3", "1000"}, nil); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(sent, "*"))
	if len(files) != 3 {
		t.Fatalf("gen wrote %d files", len(files))
	}
	a, _ := os.ReadFile(files[0])
	b, _ := os.ReadFile(files[1])
	if string(a) == string(b) || len(a) != 1000 {
		t.Fatal("gen files are not distinct 1000-byte files")
	}
	os.WriteFile(filepath.Join(stored, "x"), a, 0o644)
	os.WriteFile(filepath.Join(stored, "y"), b[:500], 0o644) // truncated
	intact, ns, nst, err := countIntact(sent, stored)
	if err != nil || intact != 1 || ns != 3 || nst != 2 {
		t.Fatalf("countIntact = %d %d %d %v, want 1 3 2", intact, ns, nst, err)
	}
}
