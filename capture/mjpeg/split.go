package mjpeg

import (
	"bytes"
	"errors"
	"io"
)

// DefaultSplitLimit is the largest frame a Splitter keeps when its
// caller gives no limit: ample for a 12 MP still, small enough for a Pi Zero.
const DefaultSplitLimit = 8 << 20

const (
	readChunk     = 64 << 10 // headroom above the frame limit for one read
	minRead       = 16 << 10 // compact or grow when less room than this is left
	maxEmptyReads = 100      // consecutive (0, nil) reads before io.ErrNoProgress
)

// SplitStats counts what a Splitter saw. Every counter is independent
// of how the stream was cut into reads.
type SplitStats struct {
	Frames    uint64 // complete frames returned by Next
	Oversized uint64 // frames longer than the limit, dropped
	Truncated uint64 // frames cut short by a new SOI or by the end of the stream
	Corrupt   uint64 // frames with a broken marker structure or without an image scan
	Garbage   uint64 // bytes outside any frame (before an SOI, after a broken frame)
}

type parseState uint8

const (
	stateSeek   parseState = iota // looking for SOI (FF D8)
	stateMarker                   // expecting a marker: FF, optional FF fill bytes, a code
	stateLength                   // expecting the two length bytes of a marker segment
	stateSkip                     // skipping the rest of a marker segment
	stateScan                     // in entropy-coded data, looking for a real marker
)

// Splitter cuts a concatenated-JPEG (MJPEG) byte stream, as written by
// `rpicam-vid --codec mjpeg -o -` or `ffmpeg -f mjpeg -`, into frames.
//
// It walks the JPEG marker structure instead of searching for the bytes
// FF D9, so an EOI-looking pair inside a segment (an EXIF thumbnail) does
// not end a frame early; inside entropy-coded data FF 00 (stuffing) and
// FF D0–D7 (restart markers) are data, FF FF is fill. Bytes between frames
// are skipped. A frame longer than the limit is parsed but not kept, so
// memory stays within about the limit plus one read. The result does not
// depend on how the stream is cut into reads.
type Splitter struct {
	r   io.Reader
	max int

	buf        []byte // buf[:end] holds data; frames are returned as sub-slices
	end        int
	pos        int // next byte to parse
	frameStart int // SOI offset of the current frame (state != stateSeek)
	state      parseState
	skip       int  // bytes of the current marker segment still to skip
	segIsSOS   bool // the segment being skipped is a scan header
	sawScan    bool // the current frame has an SOS
	discarding bool // the current frame exceeded max: parse it, keep nothing

	readErr error // error from the reader, acted on once buffered data is parsed
	err     error // sticky error returned by Next
	empty   int   // consecutive empty reads
	stats   SplitStats
}

// NewSplitter returns a splitter reading r, keeping frames of at most
// maxFrame bytes; maxFrame <= 0 means DefaultSplitLimit.
func NewSplitter(r io.Reader, maxFrame int) *Splitter {
	if maxFrame <= 0 {
		maxFrame = DefaultSplitLimit
	}
	return &Splitter{r: r, max: maxFrame}
}

// Next returns the next complete frame, from SOI through EOI. The slice
// aliases the splitter's buffer and is valid only until the next call;
// copy it to keep it. At the end of the stream Next returns io.EOF (a
// partial last frame is counted as truncated); a read error is returned as
// is. Errors are sticky.
func (s *Splitter) Next() ([]byte, error) {
	for {
		if s.err != nil {
			return nil, s.err
		}
		if a, b, ok := s.parse(); ok {
			return s.buf[a:b:b], nil
		}
		// Everything buffered is parsed and the frame is still open. The
		// check uses the parse position, never the read boundary, so the
		// verdict does not depend on how the stream was cut.
		if s.state != stateSeek && !s.discarding && s.pos-s.frameStart > s.max {
			s.stats.Oversized++
			s.discarding = true
		}
		if s.readErr != nil {
			s.finish()
			continue
		}
		s.makeRoom()
		n, err := s.r.Read(s.buf[s.end:cap(s.buf)])
		if n < 0 || n > cap(s.buf)-s.end {
			s.err = errors.New("capture: JPEG splitter: reader returned an invalid byte count")
			continue
		}
		s.end += n
		switch {
		case err != nil:
			s.readErr = err
		case n == 0:
			if s.empty++; s.empty >= maxEmptyReads {
				s.readErr = io.ErrNoProgress
			}
		default:
			s.empty = 0
		}
	}
}

// Stats returns the counters so far.
func (s *Splitter) Stats() SplitStats { return s.stats }

// AddGrowth accumulates the growth from prev to now, for summing over streams.
func (s *SplitStats) AddGrowth(now, prev SplitStats) {
	s.Frames += now.Frames - prev.Frames
	s.Oversized += now.Oversized - prev.Oversized
	s.Truncated += now.Truncated - prev.Truncated
	s.Corrupt += now.Corrupt - prev.Corrupt
	s.Garbage += now.Garbage - prev.Garbage
}

// finish accounts for what is left when the reader has failed or ended.
func (s *Splitter) finish() {
	if s.state == stateSeek {
		s.stats.Garbage += uint64(s.end - s.pos)
	} else {
		s.abandon(s.pos, false)
	}
	s.pos, s.end, s.state = 0, 0, stateSeek
	s.err = s.readErr
}

// makeRoom ensures at least minRead free bytes at the end of buf,
// dropping bytes that are no longer needed before growing.
func (s *Splitter) makeRoom() {
	if cap(s.buf)-s.end >= minRead {
		return
	}
	keep := s.pos
	if s.state != stateSeek && !s.discarding {
		keep = s.frameStart
	}
	live := s.end - keep
	dst := s.buf
	if cap(s.buf)-live < minRead {
		size := max(2*cap(s.buf), live+minRead, readChunk)
		size = min(size, max(s.max+readChunk, live+minRead))
		dst = make([]byte, size)
	}
	copy(dst[:cap(dst)], s.buf[keep:s.end])
	s.buf = dst[:cap(dst)]
	s.end -= keep
	s.pos -= keep
	s.frameStart -= keep
}

func (s *Splitter) startFrame(at int) {
	s.frameStart = at
	s.pos = at + 2
	s.state = stateMarker
	s.sawScan = false
	s.discarding = false
}

// abandon counts the current frame, which ends unfinished at offset p:
// too long, structurally broken, or cut short.
func (s *Splitter) abandon(p int, corrupt bool) {
	switch {
	case s.discarding: // already counted as oversized
	case p-s.frameStart > s.max:
		s.stats.Oversized++
	case corrupt:
		s.stats.Corrupt++
	default:
		s.stats.Truncated++
	}
	s.discarding = false
}

// dropFrame abandons the current frame as corrupt and resynchronises on the
// next SOI from the current position.
func (s *Splitter) dropFrame() {
	s.abandon(s.pos, true)
	s.state = stateSeek
}

// parse advances through buf[pos:end]. It returns the bounds of a complete
// frame, or ok=false when it needs more data.
func (s *Splitter) parse() (start, end int, ok bool) {
	for {
		switch s.state {
		case stateSeek:
			i := indexSOI(s.buf[s.pos:s.end])
			if i < 0 {
				// Keep a trailing FF: it may be the first half of an SOI.
				n := s.end - s.pos
				if n > 0 && s.buf[s.end-1] == 0xFF {
					n--
				}
				s.stats.Garbage += uint64(n)
				s.pos += n
				return 0, 0, false
			}
			s.stats.Garbage += uint64(i)
			s.startFrame(s.pos + i)

		case stateMarker:
			if s.end-s.pos < 2 {
				return 0, 0, false
			}
			if s.buf[s.pos] != 0xFF {
				s.dropFrame()
				continue
			}
			c := s.buf[s.pos+1]
			switch {
			case c == 0xFF: // fill byte before a marker
				s.pos++
			case c == 0xD8: // a new frame began before this one ended
				s.abandon(s.pos, false)
				s.startFrame(s.pos)
			case c == 0xD9:
				start, end = s.frameStart, s.pos+2
				s.pos, s.state = end, stateSeek
				switch {
				case s.discarding:
					s.discarding = false
				case end-start > s.max:
					s.stats.Oversized++
				case !s.sawScan:
					s.stats.Corrupt++ // tables only, no image
				default:
					s.stats.Frames++
					return start, end, true
				}
			case c >= 0xD0 && c <= 0xD7, c == 0x01: // standalone markers
				s.pos += 2
			case c == 0xDA:
				s.sawScan, s.segIsSOS = true, true
				s.pos += 2
				s.state = stateLength
			case c >= 0xC0: // SOFn, DHT, DQT, DRI, APPn, COM, ...
				s.segIsSOS = false
				s.pos += 2
				s.state = stateLength
			default: // FF 00 or a reserved code where a marker must be
				s.dropFrame()
			}

		case stateLength:
			if s.end-s.pos < 2 {
				return 0, 0, false
			}
			n := int(s.buf[s.pos])<<8 | int(s.buf[s.pos+1])
			if n < 2 {
				s.dropFrame()
				continue
			}
			s.pos += 2
			s.skip = n - 2
			s.state = stateSkip

		case stateSkip:
			k := min(s.skip, s.end-s.pos)
			s.pos += k
			s.skip -= k
			if s.skip > 0 {
				return 0, 0, false
			}
			if s.segIsSOS {
				s.state = stateScan
			} else {
				s.state = stateMarker
			}

		case stateScan:
			i := bytes.IndexByte(s.buf[s.pos:s.end], 0xFF)
			if i < 0 {
				s.pos = s.end
				return 0, 0, false
			}
			p := s.pos + i
			if p+1 >= s.end {
				s.pos = p
				return 0, 0, false
			}
			switch c := s.buf[p+1]; {
			case c == 0x00, c >= 0xD0 && c <= 0xD7: // stuffing, restart marker
				s.pos = p + 2
			case c == 0xFF: // fill: the marker starts at the next FF
				s.pos = p + 1
			default: // EOI, SOI, or a segment between scans (progressive JPEG)
				s.pos = p
				s.state = stateMarker
			}
		}
	}
}

// indexSOI returns the offset of the first FF D8 in b, or -1.
func indexSOI(b []byte) int {
	off := 0
	for {
		i := bytes.IndexByte(b[off:], 0xFF)
		if i < 0 {
			return -1
		}
		off += i
		if off+1 >= len(b) {
			return -1
		}
		if b[off+1] == 0xD8 {
			return off
		}
		off++
	}
}

// FrameLen returns the length of the structurally complete JPEG that
// starts at b[0] (SOI through EOI, walking segments and scans like the
// splitter), or -1 when b does not start with one. Trailing bytes after
// the EOI are allowed.
func FrameLen(b []byte) int {
	if len(b) < 2 || b[0] != 0xFF || b[1] != 0xD8 {
		return -1
	}
	s := Splitter{buf: b, end: len(b), max: len(b)}
	start, end, ok := s.parse()
	if !ok || start != 0 {
		return -1
	}
	return end
}
