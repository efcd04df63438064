package wire

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"hash/crc32"
)

// Verifier checks a payload against the checksum announced in a Meta while
// the payload streams through it, so a receiver never holds a frame in
// memory just to hash it.
type Verifier struct {
	m   *Meta
	sha hash.Hash
	crc uint32
}

// NewVerifier returns a Verifier for m's checksum, or nil when m announces
// none (a nil *Verifier accepts everything).
func NewVerifier(m *Meta) *Verifier {
	if m == nil || (!m.HasSHA256 && !m.HasCRC32C) {
		return nil
	}
	v := &Verifier{m: m}
	if m.HasSHA256 {
		v.sha = sha256.New()
	}
	return v
}

// Write adds payload bytes. It never fails.
func (v *Verifier) Write(p []byte) (int, error) {
	if v == nil {
		return len(p), nil
	}
	if v.sha != nil {
		v.sha.Write(p)
	}
	if v.m.HasCRC32C {
		v.crc = crc32.Update(v.crc, Castagnoli, p)
	}
	return len(p), nil
}

// Verify reports a *ProtocolError with ReasonChecksum when the payload seen
// so far does not match.
func (v *Verifier) Verify() error {
	if v == nil {
		return nil
	}
	if v.sha != nil {
		var got [32]byte
		v.sha.Sum(got[:0])
		if got != v.m.SHA256 {
			return &ProtocolError{Reason: ReasonChecksum, Msg: fmt.Sprintf("sha256 mismatch: announced %s, received %s", hex.EncodeToString(v.m.SHA256[:]), hex.EncodeToString(got[:]))}
		}
	}
	if v.m.HasCRC32C && v.crc != v.m.CRC32C {
		return &ProtocolError{Reason: ReasonChecksum, Msg: fmt.Sprintf("crc32c mismatch: announced %08x, received %08x", v.m.CRC32C, v.crc)}
	}
	return nil
}

// Checksum names a payload checksum a sender can announce.
type Checksum int

const (
	ChecksumNone Checksum = iota
	ChecksumCRC32C
	ChecksumSHA256
)

// ParseChecksum maps "none", "crc32c" and "sha256" to a Checksum.
func ParseChecksum(s string) (Checksum, error) {
	switch s {
	case "none", "":
		return ChecksumNone, nil
	case "crc32c":
		return ChecksumCRC32C, nil
	case "sha256":
		return ChecksumSHA256, nil
	}
	return 0, fmt.Errorf("unknown checksum %q (want none, crc32c or sha256)", s)
}

func (c Checksum) String() string {
	switch c {
	case ChecksumCRC32C:
		return "crc32c"
	case ChecksumSHA256:
		return "sha256"
	}
	return "none"
}

// Stamp computes c over payload and records it in m, without allocating.
func (c Checksum) Stamp(m *Meta, payload []byte) {
	switch c {
	case ChecksumSHA256:
		m.SHA256, m.HasSHA256 = sha256.Sum256(payload), true
	case ChecksumCRC32C:
		m.CRC32C, m.HasCRC32C = crc32.Checksum(payload, Castagnoli), true
	}
}
