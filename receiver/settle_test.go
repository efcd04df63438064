package receiver

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"framepush/wire"
)

// An unterminated SIZE line whose last digits arrive after the settle
// window (a lost segment, a stalled client) is read as a smaller size. A
// seed client only sends its image after GOT SIZE, and images never start
// with an ASCII digit, so a payload that does is the rest of the number:
// the frame is refused instead of being stored short and acknowledged.
func TestSettleWindowCutIsRefusedNotStoredShort(t *testing.T) {
	ts := startServer(t, Options{Settle: 30 * time.Millisecond})
	c := ts.dial(t)
	mustWrite(t, c, "SIZE 12")
	time.Sleep(150 * time.Millisecond) // well past the settle window
	if got := readN(t, c, len(wire.GotSize)); got != wire.GotSize {
		t.Fatalf("answer %q", got)
	}
	mustWrite(t, c, "34"+strings.Repeat("\xff", 1234))
	got := readAll(t, c)
	if !regexp.MustCompile(`^ERR protocol payload starts with a digit \("34\\xff`).MatchString(got) {
		t.Fatalf("server answered %q", got)
	}
	if finals, temps := listFiles(t, ts.dir); len(finals)+len(temps) != 0 {
		t.Fatalf("files left: %v %v", finals, temps)
	}

	// The same bytes with a terminated line are a 1234-byte frame.
	c = ts.dial(t)
	mustWrite(t, c, "SIZE 1234\n")
	if got := readN(t, c, len(wire.GotSize)); got != wire.GotSize {
		t.Fatalf("answer %q", got)
	}
	mustWrite(t, c, "34"+strings.Repeat("\xff", 1232))
	if got := readN(t, c, len(wire.GotImage)); got != wire.GotImage {
		t.Fatalf("terminated SIZE with a digit payload: answer %q", got)
	}
}
