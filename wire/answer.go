package wire

import (
	"errors"
	"io"
	"strings"
)

// ParseAnswer parses the server answer at the start of buf, which should be
// want (GotSize or GotImage). It skips leading whitespace (the tail of an
// earlier "\r\n"-terminated answer), consumes want plus any whitespace
// already present, and returns the bytes used. An "ERR <reason> ..." line
// gives a *RejectError; anything else a *ProtocolError quoting the bytes.
// ErrIncomplete asks for more bytes; atEOF says no more will come.
func ParseAnswer(buf []byte, want string, atEOF bool) (int, error) {
	i := 0
	for i < len(buf) && isSpace(buf[i]) {
		i++
	}
	rest := buf[i:]
	if len(rest) == 0 {
		if atEOF {
			return 0, io.ErrUnexpectedEOF
		}
		return 0, ErrIncomplete
	}
	if len(rest) >= len(want) && string(rest[:len(want)]) == want {
		// What follows is not judged here: whether it arrived in the same
		// segment is chance, and a verdict must not depend on chance. The
		// next Expect (or the sender's check for unasked bytes) sees it.
		n := i + len(want)
		for n < len(buf) && isSpace(buf[n]) {
			n++
		}
		return n, nil
	}
	if hasPrefixOf(rest, want) {
		if atEOF {
			return 0, io.ErrUnexpectedEOF
		}
		return 0, ErrIncomplete
	}
	if len(rest) >= 4 && string(rest[:4]) == errVerb+" " {
		end := -1
		for j, c := range rest {
			if c == '\n' {
				end = j
				break
			}
		}
		if end < 0 {
			if len(rest) > MaxLine {
				return 0, &ProtocolError{Reason: ReasonProtocol, Msg: "ERR answer longer than the limit", Bytes: snippet(rest)}
			}
			if !atEOF {
				return 0, ErrIncomplete
			}
			end = len(rest)
		}
		line := strings.TrimRight(string(rest[4:end]), " \r\t")
		reason, detail, _ := strings.Cut(line, " ")
		used := i + end
		if used < len(buf) {
			used++
		}
		return used, &RejectError{Reason: reason, Detail: detail}
	}
	if hasPrefixOf(rest, errVerb+" ") && !atEOF {
		return 0, ErrIncomplete
	}
	return 0, &ProtocolError{Reason: ReasonProtocol, Msg: "unexpected answer (want " + quoteString(want) + ")", Bytes: snippet(rest)}
}

func quoteString(s string) string { return Quote([]byte(s)) }

// AnswerReader reads server answers from a connection. It never reads past
// the end of the answer it is waiting for, except for bytes that arrived in
// the same segment, which it keeps for the next call. Deadlines are the
// caller's: set them on the connection before Expect.
type AnswerReader struct {
	r    io.Reader
	buf  [MaxLine + 64]byte
	s, e int
}

// NewAnswerReader returns an AnswerReader on r.
func NewAnswerReader(r io.Reader) *AnswerReader { return &AnswerReader{r: r} }

// Reset discards buffered bytes and reads from r from now on, so one reader
// can serve successive connections without allocating.
func (a *AnswerReader) Reset(r io.Reader) { a.r, a.s, a.e = r, 0, 0 }

// Expect reads one answer and checks that it is want. It returns nil, a
// *RejectError, a *ProtocolError, io.ErrUnexpectedEOF (the server closed
// before answering), or the connection's error (a timeout, a reset).
func (a *AnswerReader) Expect(want string) error {
	for {
		n, err := ParseAnswer(a.buf[a.s:a.e], want, false)
		if err == nil || !errors.Is(err, ErrIncomplete) {
			a.s += n
			return err
		}
		if a.s > 0 {
			copy(a.buf[:], a.buf[a.s:a.e])
			a.e -= a.s
			a.s = 0
		}
		if a.e == len(a.buf) {
			return &ProtocolError{Reason: ReasonProtocol, Msg: "answer longer than the limit", Bytes: snippet(a.buf[:])}
		}
		m, rerr := a.r.Read(a.buf[a.e:])
		a.e += m
		if m > 0 {
			continue
		}
		if rerr == io.EOF {
			n, err := ParseAnswer(a.buf[a.s:a.e], want, true)
			a.s += n
			return err
		}
		if rerr == nil {
			rerr = io.ErrNoProgress
		}
		return rerr
	}
}

// Buffered returns bytes received after the last answer, which a
// well-behaved server never sends unasked. Senders check it to catch a
// server that talks out of turn.
func (a *AnswerReader) Buffered() []byte { return a.buf[a.s:a.e] }
