package wire

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"time"
)

// Kind is the kind of a client request.
type Kind int

const (
	KindSize Kind = iota + 1 // "SIZE <n>": a frame of Size bytes follows GOT SIZE
	KindBye                  // "BYE BYE ": the client is done
)

// Request is one parsed client message.
type Request struct {
	Kind       Kind
	Size       int64 // KindSize: announced payload length, > 0
	Meta       Meta  // KindSize: extension tokens, if any
	Terminated bool  // KindSize: the line ended in "\n" (no settle wait was needed)
}

// maxSizeDigits: int64 holds every 18-digit number; longer numbers are
// refused before conversion so "SIZE 99999999999999999999" is a clean error.
const maxSizeDigits = 18

// ParseRequest parses the client message at the start of buf and returns it
// with the number of bytes it used; bytes after that (image data sent right
// behind a terminated SIZE line, or the next message) are left for the
// caller. Leading whitespace is skipped.
//
// It returns ErrIncomplete when buf holds only the start of a message, and
// ErrNeedSettle when buf ends right after the digits of an unterminated
// SIZE (or inside "BYE BYE "): call again with settled=true once the peer has been quiet for the
// settle window, which accepts the line as it stands. A *ProtocolError
// means the bytes are not this protocol.
func ParseRequest(buf []byte, settled bool) (Request, int, error) {
	i := 0
	for i < len(buf) && isSpace(buf[i]) {
		i++
	}
	if i > MaxLine {
		return Request{}, 0, &ProtocolError{Reason: ReasonProtocol, Msg: "too much whitespace before a message"}
	}
	rest := buf[i:]
	switch {
	case len(rest) == 0:
		return Request{}, 0, ErrIncomplete
	case rest[0] == 'B':
		return parseBye(buf, i, settled)
	case rest[0] == 'S':
		return parseSize(buf, i, settled)
	}
	return Request{}, 0, &ProtocolError{Reason: ReasonProtocol, Msg: "expected SIZE or BYE", Bytes: snippet(rest)}
}

// parseBye accepts "BYE", optionally followed by " BYE" and whitespace, the
// way the seed server's startswith('BYE') does. Whatever follows is left in
// the buffer; the server closes after BYE anyway.
func parseBye(buf []byte, i int, settled bool) (Request, int, error) {
	rest := buf[i:]
	if len(rest) < len(Bye) && hasPrefixOf(rest, Bye) && !settled {
		// "BYE" alone is enough once the peer goes quiet; until then it
		// may still grow into the canonical "BYE BYE ".
		if len(rest) < 3 {
			return Request{}, 0, ErrIncomplete
		}
		return Request{}, 0, ErrNeedSettle
	}
	if len(rest) < 3 || string(rest[:3]) != "BYE" {
		return Request{}, 0, &ProtocolError{Reason: ReasonProtocol, Msg: "expected SIZE or BYE", Bytes: snippet(rest)}
	}
	n := i + 3
	if len(buf) >= n+4 && string(buf[n:n+4]) == " BYE" {
		n += 4
	}
	for n < len(buf) && isSpace(buf[n]) {
		n++
	}
	return Request{Kind: KindBye}, n, nil
}

func parseSize(buf []byte, i int, settled bool) (Request, int, error) {
	rest := buf[i:]
	if len(rest) < len(sizeVerb)+1 {
		if hasPrefixOf(rest, sizeVerb+" ") || hasPrefixOf(rest, sizeVerb+"\t") {
			return Request{}, 0, ErrIncomplete
		}
		return Request{}, 0, &ProtocolError{Reason: ReasonProtocol, Msg: "expected SIZE or BYE", Bytes: snippet(rest)}
	}
	if string(rest[:4]) != sizeVerb || (rest[4] != ' ' && rest[4] != '\t') {
		return Request{}, 0, &ProtocolError{Reason: ReasonProtocol, Msg: "expected SIZE or BYE", Bytes: snippet(rest)}
	}
	// The whole line must fit in MaxLine, terminated or not. The verdict
	// on a too-long line waits until the size itself has been judged, so
	// that it does not depend on how much of the line has arrived.
	window := rest[:min(len(rest), MaxLine+1)]
	lineEnd := bytes.IndexByte(window, '\n')
	terminated := lineEnd >= 0
	line, tooLong := window, false
	if terminated {
		line = rest[:lineEnd]
	} else if len(window) > MaxLine {
		tooLong = true
	}
	j := 5
	for j < len(line) && (line[j] == ' ' || line[j] == '\t') {
		j++
	}
	digits := j
	for j < len(line) && isDigit(line[j]) {
		j++
	}
	numEnd := j
	if numEnd == digits {
		if j == len(line) && !terminated {
			return Request{}, 0, ErrIncomplete
		}
		return Request{}, 0, &ProtocolError{Reason: ReasonBadSize, Msg: "SIZE is not a positive decimal number", Bytes: snippet(line)}
	}
	if !terminated && numEnd == len(line) && !settled {
		// "SIZE 12" may still become "SIZE 1234": the seed sends no
		// terminator, so only silence ends the number.
		if numEnd-digits > maxSizeDigits {
			return Request{}, 0, &ProtocolError{Reason: ReasonBadSize, Msg: "SIZE has too many digits", Bytes: snippet(line)}
		}
		return Request{}, 0, ErrNeedSettle
	}
	tail := line[numEnd:]
	if len(tail) > 0 && tail[0] != ' ' && tail[0] != '\t' && tail[0] != '\r' {
		return Request{}, 0, &ProtocolError{Reason: ReasonBadSize, Msg: "SIZE is not a positive decimal number", Bytes: snippet(line)}
	}
	if len(tail) > 0 && tail[len(tail)-1] == '\r' {
		tail = tail[:len(tail)-1]
	}
	for _, c := range tail {
		if c == '\r' {
			return Request{}, 0, &ProtocolError{Reason: ReasonProtocol, Msg: "stray carriage return in SIZE line", Bytes: snippet(line)}
		}
	}
	if tooLong {
		return Request{}, 0, &ProtocolError{Reason: ReasonProtocol, Msg: "SIZE line longer than " + strconv.Itoa(MaxLine) + " bytes", Bytes: snippet(line)}
	}
	if !terminated && !settled {
		// Extension tokens arrive with a terminator; wait for it.
		return Request{}, 0, ErrNeedSettle
	}
	if numEnd-digits > maxSizeDigits {
		return Request{}, 0, &ProtocolError{Reason: ReasonBadSize, Msg: "SIZE has too many digits", Bytes: snippet(line)}
	}
	n, err := strconv.ParseInt(string(line[digits:numEnd]), 10, 64)
	if err != nil || n <= 0 {
		return Request{}, 0, &ProtocolError{Reason: ReasonBadSize, Msg: "SIZE must be at least 1", Bytes: snippet(line)}
	}
	req := Request{Kind: KindSize, Size: n, Terminated: terminated}
	if err := parseTokens(tail, &req.Meta); err != nil {
		return Request{}, 0, err
	}
	used := i + len(line)
	if terminated {
		used++ // the '\n'
	}
	return req, used, nil
}

// Conn is what a Decoder reads from: a net.Conn satisfies it.
type Conn interface {
	io.Reader
	SetReadDeadline(time.Time) error
}

// DefaultSettle is how long a Decoder waits for more digits after an
// unterminated SIZE. The seed client writes "SIZE <n>" in one send, which
// travels in one segment, so the window only has to cover a client that
// writes the line in pieces back to back. A longer one protects little: a
// lost tail waits for a retransmission (200 ms or more), far past any
// window worth having, and a receiver catches that cut another way (bytes
// waiting past the payload before GOT IMAGE; see docs/PROTOCOL.md). But
// every unterminated frame waits one window, capping such a sender at
// about 1/DefaultSettle frames per second per connection (measured on
// loopback: 157 frames/s at 5 ms, 46 at 20 ms). Senders that terminate the
// line (or use the extension) never wait.
const DefaultSettle = 5 * time.Millisecond

// Decoder reads requests and payload bytes from one client connection. It
// buffers at most MaxLine+bufSlack bytes; payload bytes that arrived with a
// request are served first by Read, the rest come straight from the
// connection.
type Decoder struct {
	c      Conn
	settle time.Duration
	buf    []byte
	r, w   int
}

const bufSlack = 4096

// NewDecoder returns a Decoder on c with the given settle window (0 means
// DefaultSettle).
func NewDecoder(c Conn, settle time.Duration) *Decoder {
	if settle <= 0 {
		settle = DefaultSettle
	}
	return &Decoder{c: c, settle: settle, buf: make([]byte, MaxLine+bufSlack)}
}

// Buffered reports how many bytes are read but not yet consumed.
func (d *Decoder) Buffered() int { return d.w - d.r }

// ReadRequest reads the next request, failing with a timeout error if it is
// not complete by deadline. It returns io.EOF when the client closed the
// connection cleanly between messages, io.ErrUnexpectedEOF when it closed
// mid-message. It leaves the connection's read deadline set; callers set
// their own before reading payload.
func (d *Decoder) ReadRequest(deadline time.Time) (Request, error) {
	// A failed SetReadDeadline means the connection is closed; the next
	// Read reports that, so its error is not checked here.
	_ = d.c.SetReadDeadline(deadline)
	settling := false
	for {
		req, n, err := ParseRequest(d.buf[d.r:d.w], false)
		if err == nil {
			d.r += n
			return req, nil
		}
		if err != ErrIncomplete && err != ErrNeedSettle {
			return Request{}, err
		}
		// Each new byte restarts the settle window: only silence right
		// after the digits ends an unterminated number.
		switch {
		case err == ErrNeedSettle:
			until := time.Now().Add(d.settle)
			if !deadline.IsZero() && deadline.Before(until) {
				until = deadline
			}
			settling = true
			_ = d.c.SetReadDeadline(until)
		case settling:
			settling = false
			_ = d.c.SetReadDeadline(deadline)
		}
		rerr := d.fill()
		if rerr == nil {
			continue
		}
		if settling && isTimeout(rerr) {
			// Silence after the digits: the number is complete.
			req, n, err := ParseRequest(d.buf[d.r:d.w], true)
			if err == nil {
				d.r += n
			}
			return req, err
		}
		if errors.Is(rerr, io.EOF) {
			if d.r == d.w {
				return Request{}, io.EOF
			}
			// A client that sent "BYE" or a full line and closed is fine.
			req, n, err := ParseRequest(d.buf[d.r:d.w], true)
			if err == nil && req.Kind == KindBye {
				d.r += n
				return req, nil
			}
			return Request{}, io.ErrUnexpectedEOF
		}
		return Request{}, rerr
	}
}

// fill reads more bytes into the buffer, compacting it first.
func (d *Decoder) fill() error {
	if d.r > 0 {
		copy(d.buf, d.buf[d.r:d.w])
		d.w -= d.r
		d.r = 0
	}
	if d.w == len(d.buf) {
		return &ProtocolError{Reason: ReasonProtocol, Msg: "message longer than " + strconv.Itoa(MaxLine) + " bytes", Bytes: snippet(d.buf)}
	}
	n, err := d.c.Read(d.buf[d.w:])
	d.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// Read reads payload bytes: first those already buffered, then from the
// connection. The caller bounds it (io.CopyN) and sets deadlines.
func (d *Decoder) Read(p []byte) (int, error) {
	if d.r < d.w {
		n := copy(p, d.buf[d.r:d.w])
		d.r += n
		return n, nil
	}
	return d.c.Read(p)
}

// Rest returns the bytes read but not consumed, for logging what a client
// sent after BYE.
func (d *Decoder) Rest() []byte { return d.buf[d.r:d.w] }

func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
