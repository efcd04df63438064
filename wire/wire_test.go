package wire

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"
)

// parseAll parses every request in stream, giving the parser the bytes in
// chunks of the sizes chunk returns, the way a socket might deliver them. An
// unterminated SIZE is settled only when the whole stream has been seen,
// which is what silence on the wire means.
func parseAll(t *testing.T, stream []byte, chunk func() int) ([]Request, error) {
	t.Helper()
	var reqs []Request
	var buf []byte
	pos := 0
	for {
		req, n, err := ParseRequest(buf, pos == len(stream))
		switch {
		case err == nil:
			reqs = append(reqs, req)
			buf = buf[n:]
			if req.Kind == KindSize {
				// Skip the payload, which may already be partly buffered.
				need := int(req.Size)
				take := min(need, len(buf))
				buf = buf[take:]
				need -= take
				pos += need
				if pos > len(stream) {
					return reqs, io.ErrUnexpectedEOF
				}
			}
			continue
		case errors.Is(err, ErrIncomplete) || errors.Is(err, ErrNeedSettle):
			if pos == len(stream) {
				if len(bytes.TrimSpace(buf)) == 0 {
					return reqs, nil
				}
				return reqs, io.ErrUnexpectedEOF
			}
			n := min(chunk(), len(stream)-pos)
			buf = append(buf, stream[pos:pos+n]...)
			pos += n
		default:
			return reqs, err
		}
	}
}

func sizeFrame(n int, meta *Meta, term Terminator) []byte {
	b := AppendSize(nil, int64(n), meta, term)
	return append(b, bytes.Repeat([]byte{0xAB}, n)...)
}

func TestAppendSizeSeedBytes(t *testing.T) {
	if got := string(AppendSize(nil, 126976, nil, TermNone)); got != "SIZE 126976" {
		t.Fatalf("seed bytes: got %q", got)
	}
	if got := string(AppendSize(nil, 5, nil, TermCRLF)); got != "SIZE 5\r\n" {
		t.Fatalf("crlf: got %q", got)
	}
	m := &Meta{Name: "cam-1", ID: "42", Time: time.Unix(0, 1732425600123456789), HasCRC32C: true, CRC32C: 0xdeadbeef}
	want := "SIZE 7 name=cam-1 id=42 ts=1732425600123456789 crc32c=deadbeef\n"
	if got := string(AppendSize(nil, 7, m, TermNone)); got != want {
		t.Fatalf("extension: got %q, want %q", got, want)
	}
}

func TestParseRequestTable(t *testing.T) {
	tests := []struct {
		in      string
		settled bool
		size    int64
		kind    Kind
		n       int
		err     error  // sentinel, or nil
		reason  string // ProtocolError reason
	}{
		{in: "SIZE 10\nrest", size: 10, kind: KindSize, n: 8},
		{in: "SIZE 10\r\n", size: 10, kind: KindSize, n: 9},
		{in: "  \r\nSIZE\t7  \n", size: 7, kind: KindSize, n: 13},
		{in: "SIZE 10", err: ErrNeedSettle},
		{in: "SIZE 10", settled: true, size: 10, kind: KindSize, n: 7},
		{in: "SIZE 10 ", err: ErrNeedSettle},
		{in: "SIZE ", err: ErrIncomplete},
		{in: "SIZ", err: ErrIncomplete},
		{in: "", err: ErrIncomplete},
		{in: "BY", err: ErrIncomplete},
		{in: "BYE", err: ErrNeedSettle},
		{in: "BYE", settled: true, kind: KindBye, n: 3},
		{in: "BYE BYE ", kind: KindBye, n: 8},
		{in: "BYE BYE trailing", kind: KindBye, n: 8},
		{in: "SIZE -1\n", reason: ReasonBadSize},
		{in: "SIZE -1", reason: ReasonBadSize},
		{in: "SIZE 0", settled: true, reason: ReasonBadSize},
		{in: "SIZE abc", reason: ReasonBadSize},
		{in: "SIZE 12abc", reason: ReasonBadSize},
		{in: "SIZE 99999999999999999999", reason: ReasonBadSize},
		{in: "SIZE 999999999999999999\n", size: 999999999999999999, kind: KindSize, n: 24},
		{in: "GET / HTTP/1.1\r\n", reason: ReasonProtocol},
		{in: "xSIZE 1\n", reason: ReasonProtocol},
		{in: "SIZEX", reason: ReasonProtocol},
		{in: "SIZE 5 nokey\n", reason: ReasonBadMeta},
		{in: "SIZE 5 name=../etc\n", reason: ReasonBadMeta},
		{in: "SIZE 5 sha256=zz\n", reason: ReasonBadMeta},
		{in: "SIZE 5 future=1 name=a\n", size: 5, kind: KindSize, n: 23},
		{in: "SIZE 5 \rx\n", reason: ReasonProtocol},
		{in: "SIZE 1" + strings.Repeat(" ", MaxLine), reason: ReasonProtocol},
	}
	for _, tc := range tests {
		req, n, err := ParseRequest([]byte(tc.in), tc.settled)
		var pe *ProtocolError
		switch {
		case tc.reason != "":
			if !errors.As(err, &pe) || pe.Reason != tc.reason {
				t.Errorf("%q: got err %v, want reason %s", tc.in, err, tc.reason)
			}
		case tc.err != nil:
			if err != tc.err {
				t.Errorf("%q: got err %v, want %v", tc.in, err, tc.err)
			}
		default:
			if err != nil || req.Kind != tc.kind || req.Size != tc.size || n != tc.n {
				t.Errorf("%q: got %+v n=%d err=%v; want kind %d size %d n %d", tc.in, req, n, err, tc.kind, tc.size, tc.n)
			}
		}
	}
}

func TestProtocolErrorQuotesBytes(t *testing.T) {
	_, _, err := ParseRequest([]byte("\x00\xffGARBAGE"), false)
	if err == nil || !strings.Contains(err.Error(), `"\x00\xffGARBAGE"`) {
		t.Fatalf("error does not quote the bytes: %v", err)
	}
}

func TestExtensionRoundTrip(t *testing.T) {
	payload := []byte("hello, frame")
	m := Meta{Name: "porch", ID: "000042", Time: time.Unix(1732425600, 5)}
	ChecksumSHA256.Stamp(&m, payload)
	ChecksumCRC32C.Stamp(&m, payload)
	line := AppendSize(nil, int64(len(payload)), &m, TermNone)
	req, n, err := ParseRequest(line, false)
	if err != nil || n != len(line) || !req.Terminated {
		t.Fatalf("parse %q: %+v n=%d err=%v", line, req, n, err)
	}
	got := req.Meta
	if got.Name != m.Name || got.ID != m.ID || !got.Time.Equal(m.Time) || got.SHA256 != m.SHA256 || got.CRC32C != m.CRC32C {
		t.Fatalf("meta mismatch: got %+v want %+v", got, m)
	}
	v := NewVerifier(&got)
	v.Write(payload[:3])
	v.Write(payload[3:])
	if err := v.Verify(); err != nil {
		t.Fatal(err)
	}
	v = NewVerifier(&got)
	v.Write([]byte("hello, framE"))
	var pe *ProtocolError
	if err := v.Verify(); !errors.As(err, &pe) || pe.Reason != ReasonChecksum {
		t.Fatalf("corrupt payload not caught: %v", err)
	}
	if NewVerifier(&Meta{}) != nil {
		t.Fatal("verifier without checksum should be nil")
	}
}

// TestSegmentationInvariance is the 粘包/拆包 property: however the stream
// is cut, the parser yields the same requests, and image bytes glued to a
// terminated SIZE line are never taken for protocol bytes.
func TestSegmentationInvariance(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 200; round++ {
		var stream []byte
		var want []int
		term := Terminator(r.IntN(3))
		frames := 1 + r.IntN(6)
		for i := 0; i < frames; i++ {
			n := 1 + r.IntN(3000)
			var meta *Meta
			if r.IntN(2) == 0 {
				meta = &Meta{Name: "cam", ID: "f" + string(rune('a'+i))}
			}
			// Unterminated lines are only unambiguous at the end of the
			// stream or when followed by payload; a real seed client waits
			// for GOT SIZE, which a whole-stream parse cannot model, so use
			// terminated lines between frames.
			t2 := term
			if t2 == TermNone {
				t2 = TermLF
			}
			stream = append(stream, sizeFrame(n, meta, t2)...)
			want = append(want, n)
		}
		stream = append(stream, Bye...)
		whole, err := parseAll(t, stream, func() int { return len(stream) })
		if err != nil {
			t.Fatalf("round %d whole: %v", round, err)
		}
		bytewise, err := parseAll(t, stream, func() int { return 1 })
		if err != nil {
			t.Fatalf("round %d bytewise: %v", round, err)
		}
		random, err := parseAll(t, stream, func() int { return 1 + r.IntN(700) })
		if err != nil {
			t.Fatalf("round %d random: %v", round, err)
		}
		for _, got := range [][]Request{whole, bytewise, random} {
			if len(got) != len(want)+1 || got[len(got)-1].Kind != KindBye {
				t.Fatalf("round %d: got %d requests, want %d frames + BYE", round, len(got), len(want))
			}
			for i, n := range want {
				if got[i].Size != int64(n) || got[i].Meta != whole[i].Meta {
					t.Fatalf("round %d frame %d: got %+v want size %d", round, i, got[i], n)
				}
			}
		}
	}
}

func TestParseAnswer(t *testing.T) {
	tests := []struct {
		in    string
		want  string
		atEOF bool
		n     int
		err   string // substring; "" means success
	}{
		{in: "GOT SIZE", want: GotSize, n: 8},
		{in: "GOT SIZE\r\n", want: GotSize, n: 10},
		{in: "\r\nGOT IMAGE  ", want: GotImage, n: 13},
		{in: "GOT SI", want: GotSize, err: "incomplete"},
		{in: "GOT SI", want: GotSize, atEOF: true, err: "unexpected EOF"},
		{in: "", want: GotSize, atEOF: true, err: "unexpected EOF"},
		{in: "GOT IMAGE", want: GotSize, err: `want "GOT SIZE"`},
		{in: "GOT SIZEX", want: GotSize, n: 8},
		{in: "HTTP/1.0 400 Bad", want: GotSize, err: `"HTTP/1.0 400 Bad"`},
		{in: "ERR too-large max=10\n", want: GotSize, n: 21, err: "too-large: max=10"},
		{in: "ERR busy", want: GotSize, err: "incomplete"},
		{in: "ERR busy", want: GotSize, atEOF: true, n: 8, err: "busy"},
		{in: "ER", want: GotSize, err: "incomplete"},
	}
	for _, tc := range tests {
		n, err := ParseAnswer([]byte(tc.in), tc.want, tc.atEOF)
		if tc.err == "" {
			if err != nil || n != tc.n {
				t.Errorf("%q: n=%d err=%v, want n=%d", tc.in, n, err, tc.n)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: err %v, want it to mention %q", tc.in, err, tc.err)
		}
		if tc.n != 0 && n != tc.n {
			t.Errorf("%q: n=%d want %d", tc.in, n, tc.n)
		}
	}
	var rej *RejectError
	_, err := ParseAnswer([]byte("ERR too-large max=10\n"), GotSize, false)
	if !errors.As(err, &rej) || !rej.Permanent() {
		t.Fatalf("too-large should be a permanent RejectError: %v", err)
	}
	_, err = ParseAnswer([]byte("ERR disk-full\n"), GotImage, false)
	if !errors.As(err, &rej) || rej.Permanent() {
		t.Fatalf("disk-full should be transient: %v", err)
	}
}

// chunkReader returns its data a few bytes per Read.
type chunkReader struct {
	data []byte
	step int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(c.step, len(p), len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

func TestAnswerReaderSegmentation(t *testing.T) {
	stream := "GOT SIZE\r\nGOT IMAGE\r\nGOT SIZEGOT IMAGE \n"
	for step := 1; step <= len(stream); step++ {
		a := NewAnswerReader(&chunkReader{data: []byte(stream), step: step})
		for i, want := range []string{GotSize, GotImage} {
			if err := a.Expect(want); err != nil {
				t.Fatalf("step %d answer %d: %v", step, i, err)
			}
		}
		if err := a.Expect(GotSize); err != nil {
			t.Fatalf("step %d glued answers: %v", step, err)
		}
		if err := a.Expect(GotImage); err != nil {
			t.Fatalf("step %d glued answers: %v", step, err)
		}
	}
	a := NewAnswerReader(&chunkReader{data: []byte("GOT SIZE"), step: 3})
	if err := a.Expect(GotSize); err != nil {
		t.Fatal(err)
	}
	if err := a.Expect(GotImage); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("server closed before answering: got %v", err)
	}
	answers := []byte("GOT SIZE\r\nGOT IMAGE\r\n")
	cr := &chunkReader{}
	if n := testing.AllocsPerRun(100, func() {
		cr.data, cr.step = answers, 4
		a.Reset(cr)
		_ = a.Expect(GotSize)
		_ = a.Expect(GotImage)
	}); n != 0 {
		t.Fatalf("AnswerReader allocates %.1f per round trip", n)
	}
}

func TestDecoderSettleAndGluedPayload(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	d := NewDecoder(server, 30*time.Millisecond)
	done := make(chan error, 1)
	answered := make(chan struct{})
	go func() {
		// Unterminated seed SIZE split across writes; like the seed client
		// it waits for the answer. Then a terminated line glued to its
		// payload, then BYE.
		for _, part := range []string{"SI", "ZE 1", "2"} {
			if _, err := client.Write([]byte(part)); err != nil {
				done <- err
				return
			}
		}
		<-answered
		_, err := client.Write([]byte("SIZE 3\nabcBYE BYE "))
		done <- err
	}()
	req, err := d.ReadRequest(time.Now().Add(5 * time.Second))
	close(answered)
	if err != nil || req.Size != 12 || req.Terminated {
		t.Fatalf("unterminated: %+v %v", req, err)
	}
	req, err = d.ReadRequest(time.Now().Add(5 * time.Second))
	if err != nil || req.Size != 3 || !req.Terminated {
		t.Fatalf("terminated: %+v %v", req, err)
	}
	payload := make([]byte, 3)
	if _, err := io.ReadFull(d, payload); err != nil || string(payload) != "abc" {
		t.Fatalf("payload %q %v", payload, err)
	}
	req, err = d.ReadRequest(time.Now().Add(5 * time.Second))
	if err != nil || req.Kind != KindBye {
		t.Fatalf("bye: %+v %v", req, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestDecoderEOFAndTimeout(t *testing.T) {
	client, server := net.Pipe()
	d := NewDecoder(server, 0)
	go func() {
		client.Write([]byte("SIZE"))
		client.Close()
	}()
	if _, err := d.ReadRequest(time.Now().Add(5 * time.Second)); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("mid-message close: got %v", err)
	}
	client, server = net.Pipe()
	defer client.Close()
	d = NewDecoder(server, 0)
	if _, err := d.ReadRequest(time.Now().Add(20 * time.Millisecond)); !isTimeout(err) {
		t.Fatalf("silent client: got %v, want timeout", err)
	}
	client2, server2 := net.Pipe()
	d = NewDecoder(server2, 0)
	client2.Close()
	if _, err := d.ReadRequest(time.Now().Add(5 * time.Second)); err != io.EOF {
		t.Fatalf("clean close: got %v, want io.EOF", err)
	}
}

func TestAppendErrorSanitises(t *testing.T) {
	got := string(AppendError(nil, ReasonTooLarge, "max=10\nevil"))
	if got != "ERR too-large max=10?evil\n" {
		t.Fatalf("got %q", got)
	}
}

func TestTokens(t *testing.T) {
	for _, s := range []string{"cam-1", "A.b_c:d+e", strings.Repeat("x", 128)} {
		if !ValidToken(s) {
			t.Errorf("%q should be valid", s)
		}
	}
	for _, s := range []string{"", ".", "..", "a/b", "a b", strings.Repeat("x", 129), "ü"} {
		if ValidToken(s) {
			t.Errorf("%q should be invalid", s)
		}
	}
	for _, s := range []string{"none", "lf", "crlf"} {
		tm, err := ParseTerminator(s)
		if err != nil || tm.String() != s {
			t.Errorf("terminator %q: %v %v", s, tm, err)
		}
	}
	if _, err := ParseTerminator("cr"); err == nil {
		t.Error("cr accepted")
	}
	for _, s := range []string{"none", "crc32c", "sha256"} {
		c, err := ParseChecksum(s)
		if err != nil || c.String() != s {
			t.Errorf("checksum %q: %v %v", s, c, err)
		}
	}
}

func TestAppendSizeZeroAlloc(t *testing.T) {
	buf := make([]byte, 0, 256)
	m := &Meta{Name: "cam", ID: "1", Time: time.Unix(1, 0), HasSHA256: true}
	if n := testing.AllocsPerRun(100, func() { buf = AppendSize(buf[:0], 123456, m, TermNone) }); n != 0 {
		t.Fatalf("AppendSize allocates %.1f", n)
	}
}
