package mjpeg

import (
	"bytes"
	"errors"
	"fmt"
)

// ErrTruncated marks a frame that ends before its image data does: a JPEG
// without its EOI, or a raw frame shorter than its size says. UVC cameras
// deliver these after USB packet loss; such a frame is dropped and counted,
// never passed on.
var ErrTruncated = errors.New("frame truncated")

// ErrCorruptJPEG marks a JPEG whose marker structure is broken.
var ErrCorruptJPEG = errors.New("corrupt JPEG")

// StandardDHTSize is how many bytes Fix may add to a frame: the DHT
// segment holding the four standard Huffman tables. Size the dst buffer
// len(src)+StandardDHTSize to make Fix allocation-free.
const StandardDHTSize = 2 + 2 + 4*(1+16) + 12 + 162 + 12 + 162

// huffman is one Huffman table of ITU-T T.81 Annex K.3 (the "typical"
// tables): its class/id byte, code counts per length, and symbols.
type huffman struct {
	classID byte
	counts  [16]byte
	symbols []byte
}

// standardTables are the tables UVC MJPEG streams are implicitly coded
// with (the AVI1/MJPEG convention: "use the Annex K tables when none are
// given"). They are also exactly the tables image/jpeg's encoder writes.
var standardTables = [4]huffman{
	{0x00, [16]byte{0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0}, // luminance DC (K.3)
		[]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}},
	{0x10, [16]byte{0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 125}, // luminance AC (K.5)
		[]byte{
			0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
			0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0,
			0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28,
			0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
			0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
			0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
			0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
			0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5,
			0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2,
			0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
			0xf9, 0xfa,
		}},
	{0x01, [16]byte{0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0}, // chrominance DC (K.4)
		[]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}},
	{0x11, [16]byte{0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 119}, // chrominance AC (K.6)
		[]byte{
			0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71,
			0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0,
			0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26,
			0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
			0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
			0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
			0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5,
			0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3,
			0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda,
			0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
			0xf9, 0xfa,
		}},
}

// standardDHT is the complete DHT segment (marker included) Fix inserts.
var standardDHT = buildDHT()

func buildDHT() []byte {
	seg := make([]byte, 4, StandardDHTSize)
	seg[0], seg[1] = 0xFF, 0xC4
	for _, t := range standardTables {
		seg = append(seg, t.classID)
		seg = append(seg, t.counts[:]...)
		seg = append(seg, t.symbols...)
	}
	n := len(seg) - 2
	seg[2], seg[3] = byte(n>>8), byte(n)
	return seg
}

// JPEG marker codes used here (ITU-T T.81 table B.1).
const (
	markerSOI = 0xD8
	markerEOI = 0xD9
	markerSOS = 0xDA
	markerDHT = 0xC4
	markerTEM = 0x01
)

// isSOF reports whether code is a start-of-frame marker (C0–CF
// except DHT C4, JPG C8 and DAC CC).
func isSOF(code byte) bool {
	return code >= 0xC0 && code <= 0xCF && code != markerDHT && code != 0xC8 && code != 0xCC
}

// isStandalone reports whether code is a marker without a length:
// TEM and the restart markers (SOI and EOI are handled by the callers).
func isStandalone(code byte) bool {
	return code == markerTEM || (code >= 0xD0 && code <= 0xD7)
}

// TrimPadding returns b without the zero bytes some UVC drivers and
// cameras append after the EOI (they report the whole buffer, or a
// rounded-up length, as the frame size).
func TrimPadding(b []byte) []byte {
	n := len(b)
	for n > 0 && b[n-1] == 0 {
		n--
	}
	return b[:n]
}

// Validate checks that b is one complete JPEG: SOI first, a marker walk
// through the header segments and scans, a frame header before the first
// scan, and EOI last (after the zero padding TrimPadding removes). A
// frame that ends early yields an error wrapping ErrTruncated; a broken
// marker structure one wrapping ErrCorruptJPEG. It neither allocates nor
// decodes the entropy-coded data.
func Validate(b []byte) error {
	b = TrimPadding(b)
	if len(b) < 2 || b[0] != 0xFF || b[1] != markerSOI {
		if len(b) < 2 {
			return fmt.Errorf("%w: %d bytes is not a JPEG", ErrTruncated, len(b))
		}
		return fmt.Errorf("%w: no SOI marker at the start (got % x)", ErrCorruptJPEG, b[:2])
	}
	p := 2
	sawSOF, sawSOS := false, false
	for {
		code, next, err := readMarker(b, p)
		if err != nil {
			return err
		}
		at := p
		p = next
		switch {
		case code == markerEOI:
			if !sawSOS {
				return fmt.Errorf("%w: EOI at byte %d before any image scan", ErrCorruptJPEG, at)
			}
			if p != len(b) {
				return fmt.Errorf("%w: %d bytes of data after the EOI at byte %d", ErrCorruptJPEG, len(b)-p, at)
			}
			return nil
		case code == markerSOI:
			return fmt.Errorf("%w: second SOI at byte %d (two frames glued, or the first one cut short)", ErrCorruptJPEG, at)
		case isStandalone(code):
			continue
		}
		n, err := segmentLen(b, p, code)
		if err != nil {
			return err
		}
		switch {
		case isSOF(code):
			sawSOF = true
		case code == markerSOS:
			if !sawSOF {
				return fmt.Errorf("%w: scan at byte %d before any frame header (SOF)", ErrCorruptJPEG, at)
			}
			sawSOS = true
			if p, err = skipScan(b, p+n); err != nil {
				return err
			}
			continue
		}
		p += n
	}
}

// Fix appends to dst the frame src made decodable on its own: when src
// has no Huffman table (DHT) before its first scan, as many UVC cameras
// send MJPEG, the standard Annex K tables are inserted before the frame
// header (SOF), where libjpeg and ffmpeg's mjpeg2jpeg put them; a frame
// with its own tables, or an arithmetic-coded one, is copied unchanged.
// Trailing zero padding is dropped. Only the header segments are walked;
// call Validate on the result to check the whole frame. With
// cap(dst)-len(dst) >= len(src)+StandardDHTSize it does not allocate, so a
// pooled buffer can be reused.
func Fix(dst, src []byte) ([]byte, error) {
	src = TrimPadding(src)
	if len(src) < 2 || src[0] != 0xFF || src[1] != markerSOI {
		if len(src) < 2 {
			return dst, fmt.Errorf("%w: %d bytes is not a JPEG", ErrTruncated, len(src))
		}
		return dst, fmt.Errorf("%w: no SOI marker at the start (got % x)", ErrCorruptJPEG, src[:2])
	}
	insertAt := -1 // offset of the first SOF (or SOS) marker, fill bytes included
	hasDHT, huffman := false, true
	for p := 2; ; {
		code, next, err := readMarker(src, p)
		if err != nil {
			return dst, err
		}
		at := p
		p = next
		switch {
		case code == markerEOI:
			return dst, fmt.Errorf("%w: EOI at byte %d before any image scan", ErrCorruptJPEG, at)
		case code == markerSOI:
			return dst, fmt.Errorf("%w: second SOI at byte %d before any image scan", ErrCorruptJPEG, at)
		case isStandalone(code):
			continue
		}
		n, err := segmentLen(src, p, code)
		if err != nil {
			return dst, err
		}
		switch {
		case code == markerDHT:
			hasDHT = true
		case isSOF(code):
			// SOF9 and up are arithmetic-coded: they use no Huffman tables.
			huffman = code < 0xC9
			if insertAt < 0 {
				insertAt = at
			}
		case code == markerSOS:
			if insertAt < 0 {
				insertAt = at
			}
			if hasDHT || !huffman {
				return append(dst, src...), nil
			}
			dst = append(dst, src[:insertAt]...)
			dst = append(dst, standardDHT...)
			return append(dst, src[insertAt:]...), nil
		}
		p += n
	}
}

// readMarker reads the marker at b[p:], skipping fill bytes (FF FF ...),
// and returns its code and the offset just past it.
func readMarker(b []byte, p int) (code byte, next int, err error) {
	if p >= len(b) {
		return 0, p, fmt.Errorf("%w: frame ends at byte %d without EOI", ErrTruncated, len(b))
	}
	if b[p] != 0xFF {
		return 0, p, fmt.Errorf("%w: byte %#02x at offset %d where a marker must start", ErrCorruptJPEG, b[p], p)
	}
	for p < len(b) && b[p] == 0xFF {
		p++
	}
	if p >= len(b) {
		return 0, p, fmt.Errorf("%w: frame ends inside a marker at byte %d", ErrTruncated, len(b))
	}
	code = b[p]
	if code == 0x00 {
		return 0, p, fmt.Errorf("%w: stuffed byte FF 00 at offset %d where a marker must be", ErrCorruptJPEG, p-1)
	}
	return code, p + 1, nil
}

// segmentLen returns the length (including its own two bytes) of the
// segment whose length field starts at b[p:], checking that it fits.
func segmentLen(b []byte, p int, code byte) (int, error) {
	if p+2 > len(b) {
		return 0, fmt.Errorf("%w: frame ends in the length of marker FF %02X at byte %d", ErrTruncated, code, p)
	}
	n := int(b[p])<<8 | int(b[p+1])
	if n < 2 {
		return 0, fmt.Errorf("%w: marker FF %02X at byte %d has impossible length %d", ErrCorruptJPEG, code, p-2, n)
	}
	if p+n > len(b) {
		return 0, fmt.Errorf("%w: marker FF %02X segment needs %d bytes at byte %d, frame has %d", ErrTruncated, code, n, p, len(b)-p)
	}
	return n, nil
}

// skipScan skips entropy-coded data starting at b[p:] and returns the
// offset of the marker that ends it. Inside the data FF 00 is a stuffed
// byte, FF D0–D7 are restart markers and FF FF is fill.
func skipScan(b []byte, p int) (int, error) {
	for {
		i := bytes.IndexByte(b[p:], 0xFF)
		if i < 0 {
			return 0, fmt.Errorf("%w: image data ends at byte %d without EOI", ErrTruncated, len(b))
		}
		p += i
		if p+1 >= len(b) {
			return 0, fmt.Errorf("%w: image data ends at byte %d without EOI", ErrTruncated, len(b))
		}
		switch c := b[p+1]; {
		case c == 0x00, c >= 0xD0 && c <= 0xD7:
			p += 2
		case c == 0xFF:
			p++
		default:
			return p, nil
		}
	}
}
