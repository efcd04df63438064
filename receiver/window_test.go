package receiver

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"framepush/wire"
)

// A terminated SIZE line asking for a window gets "WINDOW <n>\n" right
// before GOT SIZE (n capped by MaxWindow); then frames written back to
// back, without waiting for any answer, are all stored, in order, each
// answered GOT SIZE and GOT IMAGE.
func TestWindowGranted(t *testing.T) {
	ts := startServer(t, Options{MaxWindow: 16, NoFsync: true, MinFreeBytes: -1})
	c := ts.dial(t)
	var batch []byte
	var payloads [][]byte
	for i := range 5 {
		p := payload(1000+i*333, jpegMagic, byte(i))
		payloads = append(payloads, p)
		var meta *wire.Meta
		if i == 0 {
			meta = &wire.Meta{Window: 64}
		}
		batch = append(wire.AppendSize(batch, int64(len(p)), meta, wire.TermLF), p...)
	}
	if _, err := c.Write(batch); err != nil {
		t.Fatal(err)
	}
	want := "WINDOW 16\n" + wire.GotSize + wire.GotImage + strings.Repeat(wire.GotSize+wire.GotImage, 4)
	if got := readN(t, c, len(want)); got != want {
		t.Fatalf("answers %q, want %q", got, want)
	}
	finals, _ := listFiles(t, ts.dir)
	if len(finals) != len(payloads) {
		t.Fatalf("%d files stored, want %d", len(finals), len(payloads))
	}
	for i, f := range finals { // names sort in arrival order
		if b := readFile(t, filepath.Join(ts.dir, f)); !bytes.Equal(b, payloads[i]) {
			t.Errorf("file %d (%s) is not frame %d", i, f, i)
		}
	}
	if n := ts.m.windowed.Get(); n != 1 {
		t.Errorf("pipelined connections counted %d, want 1", n)
	}
}

// With the extension off (MaxWindow < 0), or on an unterminated line, the
// token is ignored: plain GOT SIZE, as an older receiver answers.
func TestWindowNotGranted(t *testing.T) {
	for _, tc := range []struct {
		name string
		max  int
		line string
	}{
		{"off", -1, "SIZE 5 window=8\n"},
		{"unterminated", 0, "SIZE 5 window=8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, Options{MaxWindow: tc.max, NoFsync: true, MinFreeBytes: -1})
			c := ts.dial(t)
			if _, err := c.Write([]byte(tc.line)); err != nil {
				t.Fatal(err)
			}
			if got := readN(t, c, len(wire.GotSize)); got != wire.GotSize {
				t.Fatalf("answer %q, want plain GOT SIZE", got)
			}
			if _, err := c.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			if got := readN(t, c, len(wire.GotImage)); got != wire.GotImage {
				t.Fatalf("answer %q", got)
			}
		})
	}
}
