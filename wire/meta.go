package wire

import (
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"strconv"
	"time"
)

// Meta is the optional extension carried as key=value tokens after the size
// on the SIZE line:
//
//	SIZE 48213 name=cam-porch id=000042 ts=1732425600123456789 sha256=9f86…\n
//
// The seed server parses the line with split()[1] and never looks past the
// size, so the tokens are invisible to it. Zero fields are not sent. Unknown
// keys are ignored by receivers (forward compatibility).
type Meta struct {
	Name string    // sending device; receivers may file frames under it
	ID   string    // frame id, unique per Name
	Time time.Time // capture time, sent as Unix nanoseconds

	HasSHA256 bool
	SHA256    [32]byte
	HasCRC32C bool
	CRC32C    uint32 // Castagnoli polynomial

	// Window, when > 0, asks the receiver for the pipelining extension
	// with up to Window frames unanswered (window=<n>; see window.go).
	Window int
}

// IsZero reports whether m carries nothing.
func (m *Meta) IsZero() bool {
	return m.Name == "" && m.ID == "" && m.Time.IsZero() && !m.HasSHA256 && !m.HasCRC32C && m.Window == 0
}

// Castagnoli is the CRC32C table used by the crc32c token.
var Castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maxToken bounds a name or id value.
const maxToken = 128

// ValidToken reports whether s can be sent as a name or id value: 1 to 128
// bytes of [A-Za-z0-9._:+-]. Such values are also safe as file names.
func ValidToken(s string) bool {
	if len(s) == 0 || len(s) > maxToken || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenChar(s[i]) {
			return false
		}
	}
	return true
}

func tokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || isDigit(c) ||
		c == '.' || c == '_' || c == '-' || c == ':' || c == '+'
}

// Terminator ends a SIZE line.
type Terminator int

const (
	// TermNone sends "SIZE <n>" exactly like the seed client. The receiver
	// must wait for a short silence to know the number ended.
	TermNone Terminator = iota
	// TermLF appends "\n": the receiver parses with no waiting. The seed
	// server tolerates it (split() drops whitespace).
	TermLF
	// TermCRLF appends "\r\n".
	TermCRLF
)

// ParseTerminator maps "none", "lf" and "crlf" to a Terminator.
func ParseTerminator(s string) (Terminator, error) {
	switch s {
	case "none", "":
		return TermNone, nil
	case "lf":
		return TermLF, nil
	case "crlf":
		return TermCRLF, nil
	}
	return 0, fmt.Errorf("unknown SIZE terminator %q (want none, lf or crlf)", s)
}

func (t Terminator) String() string {
	switch t {
	case TermLF:
		return "lf"
	case TermCRLF:
		return "crlf"
	}
	return "none"
}

// AppendSize appends the SIZE line for an n-byte frame to dst. With meta
// non-nil and non-zero, the extension tokens follow and the line is always
// terminated (TermNone becomes TermLF), so the receiver never waits. It
// allocates nothing when dst has room, and panics if meta's Name or ID is
// not a ValidToken (callers validate configuration up front).
func AppendSize(dst []byte, n int64, meta *Meta, term Terminator) []byte {
	dst = append(dst, sizeVerb...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, n, 10)
	if meta != nil && !meta.IsZero() {
		if meta.Name != "" {
			mustToken(meta.Name)
			dst = append(dst, " name="...)
			dst = append(dst, meta.Name...)
		}
		if meta.ID != "" {
			mustToken(meta.ID)
			dst = append(dst, " id="...)
			dst = append(dst, meta.ID...)
		}
		if !meta.Time.IsZero() {
			dst = append(dst, " ts="...)
			dst = strconv.AppendInt(dst, meta.Time.UnixNano(), 10)
		}
		if meta.HasSHA256 {
			dst = append(dst, " sha256="...)
			dst = hex.AppendEncode(dst, meta.SHA256[:])
		}
		if meta.HasCRC32C {
			dst = append(dst, " crc32c="...)
			var b [4]byte
			b[0], b[1], b[2], b[3] = byte(meta.CRC32C>>24), byte(meta.CRC32C>>16), byte(meta.CRC32C>>8), byte(meta.CRC32C)
			dst = hex.AppendEncode(dst, b[:])
		}
		if meta.Window > 0 {
			dst = append(dst, " "+windowKey+"="...)
			dst = strconv.AppendInt(dst, int64(min(meta.Window, MaxWindow)), 10)
		}
		if term == TermNone {
			term = TermLF
		}
	}
	switch term {
	case TermLF:
		dst = append(dst, '\n')
	case TermCRLF:
		dst = append(dst, '\r', '\n')
	}
	return dst
}

func mustToken(s string) {
	if !ValidToken(s) {
		panic(fmt.Sprintf("wire: %q is not a valid name/id token", s))
	}
}

// parseTokens fills m from the key=value tokens in line (the part of a SIZE
// line after the size, without terminator).
func parseTokens(line []byte, m *Meta) error {
	i := 0
	for i < len(line) {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		if i == len(line) {
			break
		}
		start := i
		for i < len(line) && line[i] != ' ' && line[i] != '\t' {
			i++
		}
		tok := line[start:i]
		eq := -1
		for j, c := range tok {
			if c == '=' {
				eq = j
				break
			}
		}
		if eq <= 0 {
			return &ProtocolError{Reason: ReasonBadMeta, Msg: "extension token is not key=value", Bytes: snippet(tok)}
		}
		key, val := string(tok[:eq]), tok[eq+1:]
		bad := func(what string) error {
			return &ProtocolError{Reason: ReasonBadMeta, Msg: "bad " + key + " (" + what + ")", Bytes: snippet(tok)}
		}
		switch key {
		case "name", "id":
			if !ValidToken(string(val)) {
				return bad("1-128 of [A-Za-z0-9._:+-]")
			}
			if key == "name" {
				m.Name = string(val)
			} else {
				m.ID = string(val)
			}
		case "ts":
			ns, err := strconv.ParseInt(string(val), 10, 64)
			if err != nil || ns <= 0 {
				return bad("Unix nanoseconds")
			}
			m.Time = time.Unix(0, ns)
		case "sha256":
			if len(val) != 64 {
				return bad("64 hex digits")
			}
			if _, err := hex.Decode(m.SHA256[:], val); err != nil {
				return bad("64 hex digits")
			}
			m.HasSHA256 = true
		case "crc32c":
			var b [4]byte
			if len(val) != 8 {
				return bad("8 hex digits")
			}
			if _, err := hex.Decode(b[:], val); err != nil {
				return bad("8 hex digits")
			}
			m.CRC32C = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
			m.HasCRC32C = true
		case windowKey:
			w, err := strconv.Atoi(string(val))
			if err != nil || w < 1 || len(val) > 5 {
				return bad("a number of frames, at least 1")
			}
			m.Window = min(w, MaxWindow)
		default:
			// Unknown keys are skipped so newer senders work with older receivers.
		}
	}
	return nil
}
