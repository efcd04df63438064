// Package wire is the framepush wire codec, shared by the sender and the
// receiver. It speaks the handshake of the original Python pair byte for
// byte and adds an optional, backward-compatible metadata extension.
//
// Per frame:
//
//	client: SIZE <n>        (ASCII decimal; no terminator by default)
//	server: GOT SIZE
//	client: <n image bytes>
//	server: GOT IMAGE
//
// and at the end the client sends "BYE BYE " and the server closes. A
// server that refuses a frame answers "ERR <reason> [detail]\n" instead of
// GOT SIZE or GOT IMAGE (see the Reason constants).
//
// TCP is a byte stream, so every parser here works on a buffer that may hold
// a partial message or several glued together: ParseRequest and ParseAnswer
// report ErrIncomplete until a whole message is present and say exactly how
// many bytes they consumed, so the rest (image data included) is never lost.
// Decoder and AnswerReader drive them over a connection. See
// docs/PROTOCOL.md for the byte-exact description.
package wire

import (
	"errors"
	"fmt"
	"strconv"
)

// The fixed messages, byte-exact with the seed.
const (
	GotSize  = "GOT SIZE"
	GotImage = "GOT IMAGE"
	Bye      = "BYE BYE "
	sizeVerb = "SIZE"
	errVerb  = "ERR"
)

// Reasons a receiver gives in an "ERR <reason>" answer.
const (
	ReasonBadSize  = "bad-size"  // SIZE is not a positive decimal integer
	ReasonTooLarge = "too-large" // SIZE is over the receiver's limit
	ReasonBadMeta  = "bad-meta"  // a malformed extension token
	ReasonProtocol = "protocol"  // bytes that are no message of this protocol
	ReasonChecksum = "checksum"  // payload does not match the announced checksum
	ReasonDiskFull = "disk-full" // receiver is below its free-disk floor
	ReasonBusy     = "busy"      // too many connections
	ReasonTimeout  = "timeout"   // peer too slow or silent
	ReasonInternal = "internal"  // the receiver failed to store the frame
)

// Permanent reports whether a frame refused for reason will be refused
// again if resent unchanged. A sender drops such a frame (logged and
// counted) instead of retrying it forever; any other reason is retried.
func Permanent(reason string) bool {
	switch reason {
	case ReasonBadSize, ReasonTooLarge, ReasonBadMeta:
		return true
	}
	return false
}

// MaxLine bounds a SIZE line (verb, size and extension tokens) and an ERR
// answer. Longer lines are protocol errors, so a hostile peer cannot make a
// reader buffer without limit.
const MaxLine = 1024

// ErrIncomplete means the buffer holds the start of a message but not all of
// it: read more and parse again.
var ErrIncomplete = errors.New("wire: incomplete message")

// ErrNeedSettle means the buffer ends with an unterminated "SIZE <digits>"
// that may or may not continue (the seed's SIZE has no terminator). Parse
// again with settled=true once the peer has been silent for the settle
// window, or with more bytes if they arrive.
var ErrNeedSettle = errors.New("wire: unterminated SIZE, waiting for more digits")

// ProtocolError is a violation of the protocol by the peer. Reason is the
// token a receiver sends back in "ERR <reason>".
type ProtocolError struct {
	Reason string // one of the Reason constants
	Msg    string // what was wrong
	Bytes  []byte // the offending bytes (at most 64), quoted by Error
}

func (e *ProtocolError) Error() string {
	if len(e.Bytes) == 0 {
		return "wire: " + e.Msg
	}
	return fmt.Sprintf("wire: %s: %s", e.Msg, Quote(e.Bytes))
}

// RejectError is an "ERR <reason> <detail>" answer from a receiver.
type RejectError struct {
	Reason string
	Detail string
}

func (e *RejectError) Error() string {
	if e.Detail == "" {
		return "receiver refused frame: " + e.Reason
	}
	return "receiver refused frame: " + e.Reason + ": " + e.Detail
}

// Permanent reports whether resending the same frame is pointless.
func (e *RejectError) Permanent() bool { return Permanent(e.Reason) }

// AppendError appends the "ERR <reason> <detail>\n" answer to dst. Detail is
// sanitised to printable ASCII so the answer stays one line.
func AppendError(dst []byte, reason, detail string) []byte {
	dst = append(dst, errVerb...)
	dst = append(dst, ' ')
	dst = append(dst, reason...)
	if detail != "" {
		dst = append(dst, ' ')
		for i := 0; i < len(detail) && i < MaxLine/2; i++ {
			c := detail[i]
			if c < 0x20 || c > 0x7e {
				c = '?'
			}
			dst = append(dst, c)
		}
	}
	return append(dst, '\n')
}

// Quote renders up to 64 bytes of peer input for a log line or an error,
// escaped, with a marker when it was cut.
func Quote(b []byte) string {
	const max = 64
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "..."
	}
	return strconv.Quote(string(b))
}

func snippet(b []byte) []byte {
	if len(b) > 64 {
		b = b[:64]
	}
	return append([]byte(nil), b...)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// hasPrefixOf reports whether b is a (possibly empty) prefix of s.
func hasPrefixOf(b []byte, s string) bool {
	return len(b) <= len(s) && string(b) == s[:len(b)]
}
