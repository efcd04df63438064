package receiver

import (
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"framepush/internal/testutil"
	"framepush/wire"
)

// strictClient speaks the seed client's bytes exactly: "SIZE <n>" with no
// terminator, waits for GOT SIZE, sends the payload, waits for GOT IMAGE.
type strictClient struct {
	t *testing.T
	c net.Conn
}

func (sc strictClient) frame(p []byte) {
	sc.t.Helper()
	mustWrite(sc.t, sc.c, fmt.Sprintf("SIZE %d", len(p)))
	if got := readN(sc.t, sc.c, len(wire.GotSize)); got != wire.GotSize {
		sc.t.Fatalf("after SIZE %d: answer %q", len(p), got)
	}
	mustWrite(sc.t, sc.c, string(p))
	if got := readN(sc.t, sc.c, len(wire.GotImage)); got != wire.GotImage {
		sc.t.Fatalf("payload %q...: answer %q", p[:min(len(p), 8)], got)
	}
}

// A frame's bytes are opaque: a strict seed-style client whose payloads
// start with ASCII digits (text, a little-endian counter in the first
// bytes, which covers 0x30..0x39 for frames 48..57) has every frame stored
// byte-identical. (framerecv used to refuse any such payload after an
// unterminated SIZE.)
func TestStrictClientPayloadsStartingWithDigits(t *testing.T) {
	ts := startServer(t, Options{})

	// One frame per connection, as the seed client does.
	c := ts.dial(t)
	strictClient{t, c}.frame([]byte("12345 hello"))
	mustWrite(t, c, wire.Bye)
	if rest := readAll(t, c); rest != "" {
		t.Fatalf("server sent %q after BYE", rest)
	}
	sent := [][]byte{[]byte("12345 hello")}

	// Frames 1..300 on one persistent connection, the counter stamped in
	// the first four bytes.
	c = ts.dial(t)
	sc := strictClient{t, c}
	for i := uint32(1); i <= 300; i++ {
		p := payload(20+int(i%7)*100, "", byte(i))
		binary.LittleEndian.PutUint32(p, i)
		sc.frame(p)
		sent = append(sent, p)
	}
	mustWrite(t, c, wire.Bye)
	if rest := readAll(t, c); rest != "" {
		t.Fatalf("server sent %q after BYE", rest)
	}
	checkStoredInOrder(t, ts.dir, sent)
	if r := ts.Stats().Rejects; len(r) != 0 {
		t.Fatalf("refusals %v", r)
	}
}

// An unterminated SIZE line whose last digits arrive after the settle
// window (a lost segment, a stalled client) is read as a smaller size. The
// client then sends the rest of the number glued to its payload, so bytes
// are already waiting when the short "payload" ends, before GOT IMAGE; a
// client following the handshake never does that, so the frame is refused
// and nothing is stored.
func TestSettleWindowCutIsRefusedNotStoredShort(t *testing.T) {
	ts := startServer(t, Options{Settle: 30 * time.Millisecond})
	for _, body := range []string{strings.Repeat("\xff", 1234), "hello, this is a text frame of some length"} {
		before := ts.Stats().Rejects[wire.ReasonProtocol]
		c := ts.dial(t)
		mustWrite(t, c, "SIZE 12")
		time.Sleep(150 * time.Millisecond) // well past the settle window
		if got := readN(t, c, len(wire.GotSize)); got != wire.GotSize {
			t.Fatalf("answer %q", got)
		}
		mustWrite(t, c, "34"+body)
		got := readAll(t, c)
		if !regexp.MustCompile(`^ERR protocol bytes after the payload before GOT IMAGE \(".*"\): the unterminated SIZE 12 was cut by the settle window, or the client did not wait for GOT IMAGE; end the SIZE line with \\n\n$`).MatchString(got) {
			t.Fatalf("server answered %q", got)
		}
		if finals, temps := listFiles(t, ts.dir); len(finals)+len(temps) != 0 {
			t.Fatalf("files left: %v %v", finals, temps)
		}
		waitRejects(t, ts, wire.ReasonProtocol, before+1)
		rec := ts.logs.forPeer(t, c.LocalAddr().String())
		if rec.Attrs["reason"] != wire.ReasonProtocol || !strings.Contains(rec.Msg, "cut by the settle window") {
			t.Fatalf("log %q %v", rec.Msg, rec.Attrs)
		}
	}

	// The same bytes with a terminated line are a 1234-byte frame.
	c := ts.dial(t)
	mustWrite(t, c, "SIZE 1234\n")
	if got := readN(t, c, len(wire.GotSize)); got != wire.GotSize {
		t.Fatalf("answer %q", got)
	}
	mustWrite(t, c, "34"+strings.Repeat("\xff", 1232))
	if got := readN(t, c, len(wire.GotImage)); got != wire.GotImage {
		t.Fatalf("terminated SIZE with a digit payload: answer %q", got)
	}
}

// After an unterminated SIZE (with or without extension tokens) the next
// request may only follow GOT IMAGE: one sent early is what a cut number
// looks like, so that frame is refused. After a terminated line nothing is
// ambiguous and pipelining stays allowed.
func TestBytesBeforeGotImage(t *testing.T) {
	ts := startServer(t, Options{})
	for _, line := range []string{"SIZE 5", "SIZE 5 name=cam"} {
		c := ts.dial(t)
		mustWrite(t, c, line)
		if got := readN(t, c, len(wire.GotSize)); got != wire.GotSize {
			t.Fatalf("%s: answer %q", line, got)
		}
		mustWrite(t, c, "helloSIZE 3")
		if got := readAll(t, c); !strings.HasPrefix(got, `ERR protocol bytes after the payload before GOT IMAGE ("SIZE 3")`) {
			t.Fatalf("%s: answer %q", line, got)
		}
	}
	if finals, _ := listFiles(t, ts.dir); len(finals) != 0 {
		t.Fatalf("stored %v", finals)
	}

	c := ts.dial(t)
	mustWrite(t, c, "SIZE 5\n")
	if got := readN(t, c, len(wire.GotSize)); got != wire.GotSize {
		t.Fatalf("answer %q", got)
	}
	mustWrite(t, c, "helloSIZE 3\n")
	if got := readN(t, c, len(wire.GotImage+wire.GotSize)); got != wire.GotImage+wire.GotSize {
		t.Fatalf("pipelined after a terminated line: answer %q", got)
	}
	mustWrite(t, c, "abc")
	if got := readN(t, c, len(wire.GotImage)); got != wire.GotImage {
		t.Fatalf("answer %q", got)
	}
	checkStoredInOrder(t, ts.dir, [][]byte{[]byte("hello"), []byte("abc")})
}

// Under TLS the bytes waiting past a payload are only visible to the TLS
// layer: the cut-number rule reads them there, and strict clients with
// digit payloads are served as over plain TCP.
func TestCutNumberRuleOverTLS(t *testing.T) {
	pki := testutil.NewPKI(t, "test CA")
	ts := startServer(t, Options{Settle: 30 * time.Millisecond, TLS: &tls.Config{
		Certificates: []tls.Certificate{pki.Server}, MinVersion: tls.VersionTLS12,
	}})
	dial := func() net.Conn {
		c, err := tls.Dial("tcp", ts.addr, &tls.Config{RootCAs: pki.Pool})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		return c
	}
	c := dial()
	sc := strictClient{t, c}
	var sent [][]byte
	for _, p := range []string{"12345 hello", "0", "9876543210"} {
		sc.frame([]byte(p))
		sent = append(sent, []byte(p))
	}
	mustWrite(t, c, wire.Bye)
	checkStoredInOrderEventually(t, ts, sent)

	c = dial()
	mustWrite(t, c, "SIZE 12")
	time.Sleep(150 * time.Millisecond)
	if got := readN(t, c, len(wire.GotSize)); got != wire.GotSize {
		t.Fatalf("answer %q", got)
	}
	mustWrite(t, c, "34"+strings.Repeat("x", 1234))
	if got := readAll(t, c); !strings.HasPrefix(got, "ERR protocol bytes after the payload before GOT IMAGE") {
		t.Fatalf("cut number over TLS: answer %q", got)
	}
	if finals, _ := listFiles(t, ts.dir); len(finals) != len(sent) {
		t.Fatalf("files %v", finals)
	}
}

func checkStoredInOrderEventually(t *testing.T, ts *testServer, sent [][]byte) {
	t.Helper()
	waitFrames(t, ts, uint64(len(sent)))
	checkStoredInOrder(t, ts.dir, sent)
}
