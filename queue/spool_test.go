package queue

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"framepush/frame"
)

// spoolFrames opens dir with the link down, puts frames seq first..last
// from source src, and closes it.
func spoolFrames(t *testing.T, dir, src string, first, last uint64) {
	t.Helper()
	q, _ := openQ(t, Options{SpoolDir: dir})
	q.SetLinkUp(false)
	for s := first; s <= last; s++ {
		f := mkFrame(s, "interval", 100+int(s))
		f.Source = src
		f.Data = payload(src, s, len(f.Data))
		put(t, q, f)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
}

func srcSeqs(fs []frame.Frame) []string {
	var out []string
	for _, f := range fs {
		out = append(out, fmt.Sprintf("%s:%d", f.Source, f.Seq))
	}
	return out
}

// Spooled frames come back after a restart in capture order, across
// several runs, before the new ones; file names sort the same way.
func TestRestartRecoveryOrder(t *testing.T) {
	dir := t.TempDir()
	spoolFrames(t, dir, "run1", 1, 3)
	spoolFrames(t, dir, "run2", 1, 2) // a restart: seq starts again at 1

	files := frameFiles(t, dir)
	if !slices.IsSorted(files) || len(files) != 5 {
		t.Fatalf("files %v", files)
	}
	clk := &fakeClock{t: t0.Add(-time.Hour)} // a clock that went backwards across the reboot
	q, lb := openQ(t, Options{SpoolDir: dir, Now: clk.Now})
	st := q.Stats()
	if st.Recovered != 5 || st.SpoolFrames != 5 || st.SpoolBytes != 101+102+103+101+102 {
		t.Fatalf("recovery stats %+v", st)
	}
	if len(lb.lines("recovered spooled frames", "frames=5")) != 1 {
		t.Fatalf("recovery not logged:\n%s", lb)
	}
	// New frames (this run) arrive while old ones are pending.
	for s := uint64(1); s <= 2; s++ {
		f := mkFrame(s, "gpio", 50)
		f.Source, f.Data, f.Time = "run3", payload("run3", s, 50), clk.Now()
		put(t, q, f)
	}
	got := drain(t, q)
	want := []string{"run1:1", "run1:2", "run1:3", "run2:1", "run2:2", "run3:1", "run3:2"}
	if g := srcSeqs(got); !slices.Equal(g, want) {
		t.Fatalf("delivery order %v, want %v", g, want)
	}
	for _, f := range got[:5] {
		if f.Format != "jpeg" || f.Trigger != "interval" || !f.Time.Equal(t0.Add(time.Duration(f.Seq)*time.Second)) {
			t.Fatalf("metadata not restored: %+v", f)
		}
	}
	wantFiles(t, dir, 0)
}

// A partially drained spool resumes where it stopped.
func TestRestartAfterPartialDelivery(t *testing.T) {
	dir := t.TempDir()
	spoolFrames(t, dir, "a", 1, 4)
	q, _ := openQ(t, Options{SpoolDir: dir})
	q.Ack(next(t, q))
	next(t, q) // seq 2 in flight when the agent stops
	q.Close()
	q2, _ := openQ(t, Options{SpoolDir: dir})
	wantSeqs(t, "resumed", drain(t, q2), 2, 3, 4)
}

func TestLeftoverTempFilesRemoved(t *testing.T) {
	dir := t.TempDir()
	spoolFrames(t, dir, "a", 1, 2)
	good := frameFiles(t, dir)
	// What a crash between create and rename leaves behind.
	for _, name := range []string{fileName(3, 1, t0) + tempSuffix, "garbage" + tempSuffix} {
		if err := os.WriteFile(spoolPath(dir, name), []byte("FPQ1 half a frame"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	q, lb := openQ(t, Options{SpoolDir: dir})
	if files := frameFiles(t, dir); !slices.Equal(files, good) {
		t.Fatalf("after open: %v, want %v", files, good)
	}
	if len(lb.lines("unfinished spool writes", "files=2")) != 1 {
		t.Fatalf("cleanup not logged:\n%s", lb)
	}
	wantDropped(t, q, nil) // never acknowledged to the producer, so not a loss
	wantSeqs(t, "kept", drain(t, q), 1, 2)
}

func TestCorruptSpoolFiles(t *testing.T) {
	damage := map[string]func(t *testing.T, path string){
		"truncated payload": func(t *testing.T, path string) {
			st, _ := os.Stat(path)
			os.Truncate(path, st.Size()-10)
		},
		"torn header": func(t *testing.T, path string) { os.Truncate(path, 3) },
		"empty":       func(t *testing.T, path string) { os.Truncate(path, 0) },
		"header bit flip": func(t *testing.T, path string) {
			b, _ := os.ReadFile(path)
			b[10] ^= 0x40
			os.WriteFile(path, b, 0o600)
		},
		"trailing garbage": func(t *testing.T, path string) {
			f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			f.Write([]byte("xx"))
			f.Close()
		},
	}
	for name, hurt := range damage {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			spoolFrames(t, dir, "a", 1, 3)
			files := frameFiles(t, dir)
			hurt(t, spoolPath(dir, files[1]))
			q, lb := openQ(t, Options{SpoolDir: dir})
			wantDropped(t, q, map[string]uint64{ReasonCorrupt: 1})
			if len(lb.lines("reason=corrupt", "file="+files[1])) != 1 {
				t.Fatalf("corrupt file not logged:\n%s", lb)
			}
			if _, err := os.Stat(filepath.Join(dir, quarantineDir, files[1])); err != nil {
				t.Fatalf("not quarantined: %v", err)
			}
			wantSeqs(t, "kept", drain(t, q), 1, 3)
		})
	}

	// A damaged payload passes the header check at open and is caught
	// when read back.
	t.Run("payload bit flip", func(t *testing.T) {
		dir := t.TempDir()
		spoolFrames(t, dir, "a", 1, 3)
		files := frameFiles(t, dir)
		path := spoolPath(dir, files[1])
		b, _ := os.ReadFile(path)
		b[len(b)-1] ^= 1
		os.WriteFile(path, b, 0o600)
		q, lb := openQ(t, Options{SpoolDir: dir})
		wantDropped(t, q, nil)
		wantSeqs(t, "kept", drain(t, q), 1, 3)
		wantDropped(t, q, map[string]uint64{ReasonCorrupt: 1})
		if len(lb.lines("reason=corrupt", seqAttr(2), "payload checksum")) != 1 {
			t.Fatalf("not logged:\n%s", lb)
		}
		if _, err := os.Stat(filepath.Join(dir, quarantineDir, files[1])); err != nil {
			t.Fatalf("not quarantined: %v", err)
		}
	})

	t.Run("deleted behind the queue", func(t *testing.T) {
		dir := t.TempDir()
		spoolFrames(t, dir, "a", 1, 2)
		q, _ := openQ(t, Options{SpoolDir: dir})
		os.Remove(spoolPath(dir, frameFiles(t, dir)[0]))
		wantSeqs(t, "kept", drain(t, q), 2)
		wantDropped(t, q, map[string]uint64{ReasonMissing: 1})
	})

	t.Run("names and strangers", func(t *testing.T) {
		dir := t.TempDir()
		spoolFrames(t, dir, "a", 1, 1)
		os.WriteFile(spoolPath(dir, "not-a-number.frame"), nil, 0o600)
		os.WriteFile(spoolPath(dir, "README"), []byte("hi"), 0o600)
		q, lb := openQ(t, Options{SpoolDir: dir})
		wantDropped(t, q, map[string]uint64{ReasonCorrupt: 1})
		if _, err := os.Stat(spoolPath(dir, "README")); err != nil {
			t.Fatal("a file that is not ours was touched")
		}
		if len(lb.lines("not frames", "README")) != 1 {
			t.Fatalf("stranger not reported:\n%s", lb)
		}
		wantSeqs(t, "kept", drain(t, q), 1)
	})

	t.Run("quarantine stays small", func(t *testing.T) {
		dir := t.TempDir()
		for i := range 12 {
			os.WriteFile(spoolPath(dir, fileName(1, uint64(i+1), t0)), []byte("junk"), 0o600)
		}
		q, _ := openQ(t, Options{SpoolDir: dir})
		wantDropped(t, q, map[string]uint64{ReasonCorrupt: 12})
		ents, _ := os.ReadDir(filepath.Join(dir, quarantineDir))
		if len(ents) != quarantineKeep || ents[len(ents)-1].Name() != fileName(1, 12, t0) {
			t.Fatalf("quarantine holds %d files", len(ents))
		}
	})
}

// Lowered limits are applied to what is found at open.
func TestReopenWithLowerLimits(t *testing.T) {
	for _, tc := range []struct {
		policy DropPolicy
		kept   []uint64
	}{{DropOldest, []uint64{3, 4, 5}}, {DropNewest, []uint64{1, 2, 3}}} {
		t.Run(string(tc.policy), func(t *testing.T) {
			dir := t.TempDir()
			spoolFrames(t, dir, "a", 1, 5)
			q, _ := openQ(t, Options{SpoolDir: dir, SpoolMaxFrames: 3, Drop: tc.policy})
			wantDropped(t, q, map[string]uint64{"full-" + string(tc.policy): 2})
			wantFiles(t, dir, 3)
			wantSeqs(t, "kept", drain(t, q), tc.kept...)
		})
	}
}

func TestSpoolLocked(t *testing.T) {
	dir := t.TempDir()
	q, _ := openQ(t, Options{SpoolDir: dir})
	_, err := Open(Options{SpoolDir: dir})
	if err == nil || !strings.Contains(err.Error(), "in use by another framepush process") {
		t.Fatalf("second Open of a spool: %v", err)
	}
	q.Close()
	q2, err := Open(Options{SpoolDir: dir})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	q2.Close()
}

func TestHeaderRoundTrip(t *testing.T) {
	for _, f := range []frame.Frame{
		mkFrame(1, "gpio", 0),
		{Seq: 1 << 60, Time: time.Date(1969, 7, 20, 20, 17, 40, 123456789, time.UTC), Format: "png", Source: "exec:/usr/bin/raspistill -o -", Trigger: "pre-trigger", Data: []byte("x")},
		{Data: []byte{}, Time: time.Time{}},
	} {
		b := encodeHeader(&f)
		h, err := readHeader(bytes.NewReader(append(b, f.Data...)))
		if err != nil {
			t.Fatal(err)
		}
		m := h.meta
		if m.Seq != f.Seq || !m.Time.Equal(f.Time) || m.Format != f.Format || m.Source != f.Source ||
			m.Trigger != f.Trigger || h.dataLen != int64(len(f.Data)) || h.hdrLen != int64(len(b)) {
			t.Fatalf("round trip of %+v gave %+v", f, h)
		}
		if f.Time.IsZero() != m.Time.IsZero() {
			t.Fatal("zero time not preserved")
		}
	}
	for run, pos := range map[uint64]uint64{1: 1, 999999: 1e12 - 1, 1234567: 1 << 40} {
		name := fileName(run, pos, t0)
		if r, p, ok := parseName(name); !ok || r != run || p != pos {
			t.Fatalf("parseName(%q) = %d %d %v", name, r, p, ok)
		}
	}
	for _, bad := range []string{"x.frame", "0-1-t.frame", "1-2.frame", "1-2-t.tmp"} {
		if _, _, ok := parseName(bad); ok {
			t.Fatalf("parseName(%q) accepted", bad)
		}
	}
}

func FuzzDecodeHeader(f *testing.F) {
	fr := mkFrame(3, "gpio", 10)
	f.Add(encodeHeader(&fr))
	f.Add([]byte("FPQ1\x00\x05"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := readHeader(bytes.NewReader(b))
		if err == nil && h.hdrLen > int64(len(b)) {
			t.Fatalf("header of %d bytes decoded from %d", h.hdrLen, len(b))
		}
	})
}
