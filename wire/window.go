package wire

import (
	"bytes"
	"errors"
	"io"
	"strconv"
)

// The pipelining extension (docs/PROTOCOL.md, "Pipelining"). A sender asks
// on the first, always terminated, SIZE line of a connection:
//
//	SIZE 51200 window=64\n
//
// A receiver that supports it answers "WINDOW <n>\n" right before GOT SIZE,
// n being the number of frames the sender may have sent but not yet seen
// answered (at most the number asked). No older receiver sends a line
// starting with "W", so a sender that reads "GOT SIZE" (or "ERR") first
// knows at once that the receiver ignored the token, and speaks plain
// stop-and-wait on that connection. Once acknowledged, the sender writes
// each following "SIZE <n>...\n" and its payload without waiting; the
// receiver answers GOT SIZE and GOT IMAGE for each frame, in order, exactly
// as without the window. An ERR answer still ends the connection: frames
// sent behind the refused one are unanswered, and the sender resends them.
const (
	windowKey  = "window"
	windowVerb = "WINDOW"
)

// MaxWindow bounds the window a sender may ask for and a receiver grant.
const MaxWindow = 1024

// AppendWindowAck appends the receiver's acknowledgement "WINDOW <n>\n".
func AppendWindowAck(dst []byte, n int) []byte {
	dst = append(dst, windowVerb...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(n), 10)
	return append(dst, '\n')
}

// ParseWindowAck looks for "WINDOW <n>\n" at the start of buf (after
// whitespace). It returns the window and the bytes used; (0, 0, nil) when
// buf starts with anything else (GOT SIZE, ERR: the receiver ignored the
// token), ErrIncomplete when more bytes are needed to tell, and a
// *ProtocolError for a malformed line.
func ParseWindowAck(buf []byte, atEOF bool) (int, int, error) {
	i := 0
	for i < len(buf) && isSpace(buf[i]) {
		i++
	}
	rest := buf[i:]
	if len(rest) == 0 {
		if atEOF {
			return 0, 0, nil
		}
		return 0, 0, ErrIncomplete
	}
	if rest[0] != 'W' {
		return 0, 0, nil
	}
	end := bytes.IndexByte(rest[:min(len(rest), 64)], '\n')
	if end < 0 {
		if len(rest) >= 64 || atEOF || !hasPrefixOf(rest[:min(len(rest), len(windowVerb)+1)], windowVerb+" ") {
			return 0, 0, &ProtocolError{Reason: ReasonProtocol, Msg: "malformed WINDOW answer", Bytes: snippet(rest)}
		}
		return 0, 0, ErrIncomplete
	}
	line := bytes.TrimRight(rest[:end], "\r")
	num, ok := bytes.CutPrefix(line, []byte(windowVerb+" "))
	n, err := strconv.Atoi(string(num))
	if !ok || err != nil || n < 1 || len(num) > 5 {
		return 0, 0, &ProtocolError{Reason: ReasonProtocol, Msg: "malformed WINDOW answer", Bytes: snippet(rest[:end])}
	}
	return min(n, MaxWindow), i + end + 1, nil
}

// ExpectWindowAck reads the optional "WINDOW <n>\n" that precedes GOT SIZE
// when the sender asked for a window. It returns 0 when the next answer is
// something else, which it leaves for Expect.
func (a *AnswerReader) ExpectWindowAck() (int, error) {
	for {
		w, n, err := ParseWindowAck(a.buf[a.s:a.e], false)
		if !errors.Is(err, ErrIncomplete) {
			a.s += n
			return w, err
		}
		if a.s > 0 {
			copy(a.buf[:], a.buf[a.s:a.e])
			a.e -= a.s
			a.s = 0
		}
		m, rerr := a.r.Read(a.buf[a.e:])
		a.e += m
		if m > 0 {
			continue
		}
		if rerr == io.EOF {
			w, n, err := ParseWindowAck(a.buf[a.s:a.e], true)
			a.s += n
			return w, err
		}
		if rerr == nil {
			rerr = io.ErrNoProgress
		}
		return 0, rerr
	}
}
