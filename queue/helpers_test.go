package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"framepush/frame"
	"framepush/internal/testutil"
)

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// payload is deterministic per (source, seq) so that a frame read back can
// be checked byte for byte.
func payload(source string, seq uint64, size int) []byte {
	b := make([]byte, size)
	x := uint32(seq*2654435761) ^ uint32(len(source))
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

func mkFrame(seq uint64, trigger frame.TriggerKind, size int) frame.Frame {
	return frame.Frame{
		Data: payload("test", seq, size), Format: "jpeg", Seq: seq,
		Time: t0.Add(time.Duration(seq) * time.Second), Source: "test", Trigger: trigger,
	}
}

func checkFrame(t *testing.T, f frame.Frame) {
	t.Helper()
	if !bytes.Equal(f.Data, payload(f.Source, f.Seq, len(f.Data))) {
		t.Fatalf("frame %s seq %d: payload differs from what was put", f.Source, f.Seq)
	}
}

// fakeClock is an injectable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// logBuf collects log output from concurrent goroutines.
type logBuf struct{ testutil.Buffer }

// lines returns the log lines containing every one of subs.
func (l *logBuf) lines(subs ...string) []string {
	var out []string
	for line := range strings.SplitSeq(l.String(), "\n") {
		ok := line != ""
		for _, s := range subs {
			ok = ok && strings.Contains(line, s)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

// openQ opens a queue logging into the returned buffer and closes it at
// the end of the test.
func openQ(t *testing.T, o Options) (*Queue, *logBuf) {
	t.Helper()
	lb := &logBuf{}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	q, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q, lb
}

func put(t *testing.T, q *Queue, fs ...frame.Frame) {
	t.Helper()
	for _, f := range fs {
		if err := q.Put(f); err != nil {
			t.Fatalf("put seq %d: %v", f.Seq, err)
		}
	}
}

// next gets one frame from a queue known to have one ready.
func next(t *testing.T, q *Queue) Item {
	t.Helper()
	if q.Stats().Pending-q.Stats().InFlight == 0 {
		t.Fatal("next: queue has nothing to hand out")
	}
	it, err := q.Next(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	checkFrame(t, it.Frame)
	return it
}

// drain acks everything pending and returns the frames in delivery order.
func drain(t *testing.T, q *Queue) []frame.Frame {
	t.Helper()
	var out []frame.Frame
	for q.Stats().Pending > 0 {
		it := next(t, q)
		if err := q.Ack(it); err != nil {
			t.Fatal(err)
		}
		out = append(out, it.Frame)
	}
	return out
}

func seqs(fs []frame.Frame) []uint64 {
	out := make([]uint64, len(fs))
	for i, f := range fs {
		out[i] = f.Seq
	}
	return out
}

func wantSeqs(t *testing.T, what string, got []frame.Frame, want ...uint64) {
	t.Helper()
	if g := seqs(got); !slices.Equal(g, want) {
		t.Fatalf("%s: got seqs %v, want %v", what, g, want)
	}
}

// frameFiles lists the frame files in dir, sorted by name.
func frameFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() && e.Name() != lockName && e.Name() != runStateName {
			out = append(out, e.Name())
		}
	}
	return out
}

func wantFiles(t *testing.T, dir string, n int) []string {
	t.Helper()
	files := frameFiles(t, dir)
	if len(files) != n {
		t.Fatalf("spool holds %d files %v, want %d", len(files), files, n)
	}
	for _, f := range files {
		if !strings.HasSuffix(f, frameSuffix) {
			t.Fatalf("unexpected file %s in spool", f)
		}
	}
	return files
}

func wantDropped(t *testing.T, q *Queue, want map[string]uint64) {
	t.Helper()
	got := q.Stats().Dropped
	for _, r := range DropReasons {
		if got[r] != want[r] {
			t.Fatalf("dropped %v, want %v", got, want)
		}
	}
}

func wantErrIs(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want %v", err, target)
	}
}

// seqList renders seqs as the log does, for matching drop lines.
func seqAttr(seq uint64) string { return fmt.Sprintf(" seq=%d ", seq) }

func spoolPath(dir, name string) string { return filepath.Join(dir, name) }

// waitBlocked returns once a Next is parked waiting for a frame.
func waitBlocked(q *Queue) {
	for {
		q.mu.Lock()
		w := q.wake != nil
		q.mu.Unlock()
		if w {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func ctxDone() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
