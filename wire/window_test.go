package wire

import (
	"bytes"
	"errors"
	"testing"
)

func TestWindowToken(t *testing.T) {
	line := AppendSize(nil, 5, &Meta{Window: 64}, TermNone)
	if string(line) != "SIZE 5 window=64\n" {
		t.Fatalf("asking line %q: want the token and a terminator", line)
	}
	req, n, err := ParseRequest(append(line, "hello"...), false)
	if err != nil || n != len(line) || req.Meta.Window != 64 || !req.Terminated {
		t.Fatalf("parsed %+v, %d, %v", req, n, err)
	}
	if s := string(AppendSize(nil, 5, &Meta{Window: 5000}, TermLF)); s != "SIZE 5 window=1024\n" {
		t.Errorf("window above MaxWindow sent as %q", s)
	}
	for _, bad := range []string{"SIZE 5 window=0\n", "SIZE 5 window=x\n", "SIZE 5 window=123456\n", "SIZE 5 window=\n"} {
		var pe *ProtocolError
		if _, _, err := ParseRequest([]byte(bad), false); !errors.As(err, &pe) || pe.Reason != ReasonBadMeta {
			t.Errorf("%q: %v, want bad-meta", bad, err)
		}
	}
}

func TestParseWindowAck(t *testing.T) {
	for _, tc := range []struct {
		in      string
		atEOF   bool
		w, used int
		err     error
	}{
		{"WINDOW 64\nGOT SIZE", false, 64, 10, nil},
		{"WINDOW 64\r\nGOT SIZE", false, 64, 11, nil},
		{"GOT SIZE", false, 0, 0, nil},                 // ignored: plain answer, left for Expect
		{"ERR busy max=4\n", false, 0, 0, nil},         // a refusal, left for Expect
		{"WIND", false, 0, 0, ErrIncomplete},           // wait for more
		{"WINDOW 64", false, 0, 0, ErrIncomplete},      // no terminator yet
		{"", false, 0, 0, ErrIncomplete},               // nothing yet
		{"WINDOW 9999999\n", false, 0, 0, errProtocol}, // too many digits
		{"WINDOW x\n", false, 0, 0, errProtocol},
		{"WINDOWS\n", false, 0, 0, errProtocol},
		{"WINDOW 64", true, 0, 0, errProtocol},
	} {
		w, n, err := ParseWindowAck([]byte(tc.in), tc.atEOF)
		var pe *ProtocolError
		switch {
		case tc.err == errProtocol && !errors.As(err, &pe):
			t.Errorf("%q: %v, want a protocol error", tc.in, err)
		case tc.err != errProtocol && !errors.Is(err, tc.err):
			t.Errorf("%q: %v, want %v", tc.in, err, tc.err)
		case tc.err == nil && (w != tc.w || n != tc.used):
			t.Errorf("%q: window %d used %d, want %d and %d", tc.in, w, n, tc.w, tc.used)
		}
	}
	// Through an AnswerReader, one byte at a time.
	ar := NewAnswerReader(&oneByte{r: bytes.NewReader(append(AppendWindowAck(nil, 8), GotSize...))})
	if w, err := ar.ExpectWindowAck(); err != nil || w != 8 {
		t.Fatalf("ExpectWindowAck: %d, %v", w, err)
	}
	if err := ar.Expect(GotSize); err != nil {
		t.Fatal(err)
	}
}

var errProtocol = errors.New("a *ProtocolError")

type oneByte struct{ r *bytes.Reader }

func (o *oneByte) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return o.r.Read(p)
}
