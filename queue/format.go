package queue

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
	"strings"
	"time"

	"framepush/frame"
)

// Spool file layout (all integers big-endian):
//
//	magic    4  "FPQ1"
//	hdrLen   2  bytes before the payload, this field and the header CRC included
//	seq      8  Frame.Seq
//	sec      8  Frame.Time, seconds since 1970 (negative before)
//	nsec     4  Frame.Time, nanoseconds within the second
//	dataLen  4  payload length
//	dataCRC  4  CRC32C (Castagnoli) of the payload
//	fmtLen   2, srcLen 2, trgLen 2
//	format, source, trigger (UTF-8, lengths above)
//	hdrCRC   4  CRC32C of every header byte before it
//	payload  dataLen bytes
//
// The header has its own CRC so a torn file is recognised from its first
// bytes when the spool is opened, without reading megabytes of payload from
// the SD card; the payload CRC is checked when the frame is read back for
// sending. The file size must be exactly hdrLen+dataLen.
const (
	fileMagic      = "FPQ1"
	fixedHeaderLen = 4 + 2 + 8 + 8 + 4 + 4 + 4 + 2 + 2 + 2 + 4
	maxMetaString  = 1<<16 - 1
	maxHeaderLen   = fixedHeaderLen + 3*maxMetaString
	frameSuffix    = ".frame"
	tempSuffix     = ".tmp"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// corruptError says why a spool file cannot be trusted.
type corruptError struct{ reason string }

func (e *corruptError) Error() string { return "corrupt spool file: " + e.reason }

func corrupt(format string, args ...any) error {
	return &corruptError{reason: fmt.Sprintf(format, args...)}
}

// checkMeta rejects metadata the spool header cannot carry.
func checkMeta(f *frame.Frame) error {
	for _, s := range [...]struct{ name, v string }{
		{"Format", string(f.Format)}, {"Source", f.Source}, {"Trigger", string(f.Trigger)},
	} {
		if len(s.v) > maxMetaString {
			return fmt.Errorf("queue: frame seq %d: %s is %d bytes long, at most %d are allowed",
				f.Seq, s.name, len(s.v), maxMetaString)
		}
	}
	if uint64(len(f.Data)) > 1<<32-1 {
		return fmt.Errorf("queue: frame seq %d is %d bytes, at most %d are allowed: %w",
			f.Seq, len(f.Data), uint64(1<<32-1), ErrTooLarge)
	}
	return nil
}

// encodeHeader returns the header for f; f must have passed checkMeta.
func encodeHeader(f *frame.Frame) []byte {
	n := fixedHeaderLen + len(f.Format) + len(f.Source) + len(f.Trigger)
	b := make([]byte, 0, n)
	b = append(b, fileMagic...)
	b = binary.BigEndian.AppendUint16(b, uint16(n))
	b = binary.BigEndian.AppendUint64(b, f.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(f.Time.Unix()))
	b = binary.BigEndian.AppendUint32(b, uint32(f.Time.Nanosecond()))
	b = binary.BigEndian.AppendUint32(b, uint32(len(f.Data)))
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(f.Data, castagnoli))
	b = binary.BigEndian.AppendUint16(b, uint16(len(f.Format)))
	b = binary.BigEndian.AppendUint16(b, uint16(len(f.Source)))
	b = binary.BigEndian.AppendUint16(b, uint16(len(f.Trigger)))
	b = append(b, f.Format...)
	b = append(b, f.Source...)
	b = append(b, f.Trigger...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// header is a decoded spool file header.
type header struct {
	meta    frame.Frame // Data nil
	hdrLen  int64
	dataLen int64
	dataCRC uint32
}

// readHeader reads and verifies the header at the start of r.
func readHeader(r io.Reader) (header, error) {
	var h header
	var prefix [6]byte
	if _, err := io.ReadFull(r, prefix[:]); err != nil {
		return h, shortRead(err, "header")
	}
	if string(prefix[:4]) != fileMagic {
		return h, corrupt("bad magic %q, want %q", prefix[:4], fileMagic)
	}
	n := int(binary.BigEndian.Uint16(prefix[4:]))
	if n < fixedHeaderLen {
		return h, corrupt("header length %d below the minimum %d", n, fixedHeaderLen)
	}
	b := make([]byte, n)
	copy(b, prefix[:])
	if _, err := io.ReadFull(r, b[6:]); err != nil {
		return h, shortRead(err, "header")
	}
	return decodeHeader(b)
}

// decodeHeader parses a complete header (b holds exactly hdrLen bytes).
func decodeHeader(b []byte) (header, error) {
	var h header
	if len(b) < fixedHeaderLen || string(b[:4]) != fileMagic {
		return h, corrupt("not a spool header")
	}
	if int(binary.BigEndian.Uint16(b[4:])) != len(b) {
		return h, corrupt("header length field %d, header is %d bytes", binary.BigEndian.Uint16(b[4:]), len(b))
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return h, corrupt("header checksum %08x, stored %08x", got, sum)
	}
	p := body[6:]
	h.meta.Seq = binary.BigEndian.Uint64(p)
	sec := int64(binary.BigEndian.Uint64(p[8:]))
	nsec := binary.BigEndian.Uint32(p[16:])
	if nsec >= 1e9 {
		return h, corrupt("nanoseconds %d out of range", nsec)
	}
	h.meta.Time = time.Unix(sec, int64(nsec))
	h.dataLen = int64(binary.BigEndian.Uint32(p[20:]))
	h.dataCRC = binary.BigEndian.Uint32(p[24:])
	lf, ls, lt := int(binary.BigEndian.Uint16(p[28:])), int(binary.BigEndian.Uint16(p[30:])), int(binary.BigEndian.Uint16(p[32:]))
	s := p[34:]
	if lf+ls+lt != len(s) {
		return h, corrupt("metadata lengths %d+%d+%d do not match the %d bytes present", lf, ls, lt, len(s))
	}
	h.meta.Format = frame.Format(s[:lf])
	h.meta.Source = string(s[lf : lf+ls])
	h.meta.Trigger = frame.TriggerKind(s[lf+ls:])
	h.hdrLen = int64(len(b))
	return h, nil
}

func shortRead(err error, what string) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return corrupt("truncated %s", what)
	}
	return err
}

// fileName names a spool file so that names sort in capture order: the run
// number (one more than any run found in the spool at open), then the frame's
// position within the run. The capture time at the end is for the operator;
// ordering never depends on it, because a Pi without a real-time clock boots
// with a stale clock and capture times can go backwards across a restart.
func fileName(run, n uint64, t time.Time) string {
	return fmt.Sprintf("%06d-%012d-%s%s", run, n, t.UTC().Format("20060102T150405.000000000Z"), frameSuffix)
}

// parseName returns the run and position encoded by fileName.
func parseName(name string) (run, n uint64, ok bool) {
	base, ok := strings.CutSuffix(name, frameSuffix)
	if !ok {
		return 0, 0, false
	}
	rs, rest, ok := strings.Cut(base, "-")
	if !ok {
		return 0, 0, false
	}
	ns, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, 0, false
	}
	run, err1 := strconv.ParseUint(rs, 10, 64)
	n, err2 := strconv.ParseUint(ns, 10, 64)
	if err1 != nil || err2 != nil || run == 0 {
		return 0, 0, false
	}
	return run, n, true
}
