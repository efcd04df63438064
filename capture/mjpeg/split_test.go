package mjpeg

import (
	"bytes"
	"errors"
	"image/jpeg"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"

	"framepush/capture/internal/jpegtest"
)

// jpegtest.Noise encodes a w×h noise image: noise makes the encoder emit
// plenty of FF 00 stuffing in the entropy-coded data.
// testSynthetic builds a frame the standard encoder never writes but
// real cameras do: an APP1 whose payload holds an EXIF-thumbnail-like
// FF D8 … FF D9, a restart interval with RST markers, fill bytes, and two
// scans with a DHT between them (progressive layout).
func testSynthetic() []byte {
	seg := func(code byte, payload ...byte) []byte {
		n := len(payload) + 2
		return append([]byte{0xFF, code, byte(n >> 8), byte(n)}, payload...)
	}
	var b []byte
	b = append(b, 0xFF, 0xD8)
	b = append(b, seg(0xE1, 'E', 'x', 'i', 'f', 0, 0, 0xFF, 0xD8, 0xFF, 0xDB, 0xFF, 0xD9, 0xFF)...)
	b = append(b, seg(0xDB, 0, 1, 2, 3)...)
	b = append(b, seg(0xDD, 0, 4)...) // DRI
	b = append(b, seg(0xC2, 8, 0, 16, 0, 16, 1, 1, 0x11, 0)...)
	b = append(b, seg(0xDA, 1, 1, 0, 0, 0, 0)...)
	b = append(b, 0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, 0xFF, 0xD1, 0xFF, 0x00, 0xFF, 0xD7, 0x78)
	b = append(b, seg(0xC4, 0x10, 0xFF, 0xD9, 0xFF)...)
	b = append(b, 0xFF, 0xFF) // fill bytes before a marker
	b = append(b, seg(0xDA, 1, 1, 0, 0, 0, 0)...)
	b = append(b, 0x9A, 0xFF, 0x00, 0xFF, 0x00, 0xBC)
	b = append(b, 0xFF, 0xFF, 0xFF, 0xD9)
	return b
}

type splitResult struct {
	frames [][]byte
	stats  SplitStats
	err    error
}

func splitAll(r io.Reader, maxFrame int) splitResult {
	s := NewSplitter(r, maxFrame)
	var res splitResult
	for {
		f, err := s.Next()
		if err != nil {
			res.err = err
			break
		}
		res.frames = append(res.frames, bytes.Clone(f))
	}
	res.stats = s.Stats()
	return res
}

// chunkReader hands out data in random-sized pieces, sometimes
// nothing at all, like a pipe under load.
type chunkReader struct {
	data     []byte
	rng      *rand.Rand
	maxChunk int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	if r.rng.IntN(10) == 0 {
		return 0, nil
	}
	n := min(1+r.rng.IntN(r.maxChunk), len(p), len(r.data))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// splitReaders returns readers that deliver the same stream cut in
// different ways.
func splitReaders(data []byte, seed uint64) map[string]func() io.Reader {
	return map[string]func() io.Reader{
		"whole":   func() io.Reader { return bytes.NewReader(data) },
		"bytes":   func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data)) },
		"half":    func() io.Reader { return iotest.HalfReader(bytes.NewReader(data)) },
		"dataerr": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(data)) },
		"small": func() io.Reader {
			return &chunkReader{data: data, rng: rand.New(rand.NewPCG(seed, 1)), maxChunk: 7}
		},
		"large": func() io.Reader {
			return &chunkReader{data: data, rng: rand.New(rand.NewPCG(seed, 2)), maxChunk: 70000}
		},
	}
}

// checkSplitInvariance splits data every way and requires identical
// results; it returns them.
func checkSplitInvariance(t *testing.T, data []byte, maxFrame int, seed uint64) splitResult {
	t.Helper()
	want := splitAll(bytes.NewReader(data), maxFrame)
	for name, mk := range splitReaders(data, seed) {
		got := splitAll(mk(), maxFrame)
		if got.err != want.err {
			t.Fatalf("%s: error %v, whole stream gave %v", name, got.err, want.err)
		}
		if got.stats != want.stats {
			t.Fatalf("%s: stats %+v, whole stream gave %+v", name, got.stats, want.stats)
		}
		if len(got.frames) != len(want.frames) {
			t.Fatalf("%s: %d frames, whole stream gave %d", name, len(got.frames), len(want.frames))
		}
		for i := range got.frames {
			if !bytes.Equal(got.frames[i], want.frames[i]) {
				t.Fatalf("%s: frame %d differs (%d vs %d bytes)", name, i, len(got.frames[i]), len(want.frames[i]))
			}
		}
	}
	return want
}

func TestSplitJPEGAnySegmentation(t *testing.T) {
	f1 := jpegtest.Noise(t, 48, 32, 1)
	f2 := jpegtest.Noise(t, 64, 48, 2)
	f3 := testSynthetic()
	f4 := jpegtest.Noise(t, 16, 16, 4)
	if !bytes.Contains(f1, []byte{0xFF, 0x00}) {
		t.Fatal("test frame has no FF 00 stuffing; the test would prove less than it claims")
	}
	garbage := []byte("junk\xff\xff\x00\xd9 between frames\xff")
	var stream []byte
	stream = append(stream, garbage...)
	stream = append(stream, f1...)
	stream = append(stream, f2...) // glued, no gap
	stream = append(stream, garbage...)
	stream = append(stream, f3...)
	stream = append(stream, f4...)
	stream = append(stream, "trailing"...)

	for seed := uint64(0); seed < 20; seed++ {
		res := checkSplitInvariance(t, stream, 0, seed)
		if res.err != io.EOF {
			t.Fatalf("end of stream gave %v, want io.EOF", res.err)
		}
		want := [][]byte{f1, f2, f3, f4}
		if len(res.frames) != len(want) {
			t.Fatalf("got %d frames, want %d (stats %+v)", len(res.frames), len(want), res.stats)
		}
		for i := range want {
			if !bytes.Equal(res.frames[i], want[i]) {
				t.Fatalf("frame %d: got %d bytes, want %d", i, len(res.frames[i]), len(want[i]))
			}
		}
		wantStats := SplitStats{Frames: 4, Garbage: uint64(2*len(garbage) + len("trailing"))}
		if res.stats != wantStats {
			t.Fatalf("stats %+v, want %+v", res.stats, wantStats)
		}
	}
	for _, f := range [][]byte{f1, f2, f4} {
		if _, err := jpeg.Decode(bytes.NewReader(f)); err != nil {
			t.Fatalf("split frame does not decode: %v", err)
		}
	}
}

func TestSplitJPEGDamage(t *testing.T) {
	f1 := jpegtest.Noise(t, 48, 32, 11)
	f2 := jpegtest.Noise(t, 32, 32, 12)
	tablesOnly := []byte{0xFF, 0xD8, 0xFF, 0xDB, 0x00, 0x03, 0x00, 0xFF, 0xD9}
	badMarker := []byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x00, 0x00, 0x12, 0x34}
	badLength := []byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x01}
	cases := []struct {
		name   string
		stream [][]byte
		frames [][]byte
		stats  SplitStats
	}{
		{"cut by next SOI", [][]byte{f1[:len(f1)/2], f2}, [][]byte{f2}, SplitStats{Frames: 1, Truncated: 1}},
		{"cut by end of stream", [][]byte{f1, f2[:len(f2)-1]}, [][]byte{f1}, SplitStats{Frames: 1, Truncated: 1}},
		{"no image scan", [][]byte{tablesOnly, f2}, [][]byte{f2}, SplitStats{Frames: 1, Corrupt: 1}},
		{"data where a marker belongs", [][]byte{badMarker, f2}, [][]byte{f2},
			SplitStats{Frames: 1, Corrupt: 1, Garbage: 2}},
		{"segment length below 2", [][]byte{badLength, f1}, [][]byte{f1},
			SplitStats{Frames: 1, Corrupt: 1, Garbage: 2}},
		{"only garbage", [][]byte{[]byte("\xff\xd9\xff\x00abc\xff")}, nil, SplitStats{Garbage: 8}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := checkSplitInvariance(t, bytes.Join(tc.stream, nil), 0, 7)
			if res.stats != tc.stats {
				t.Fatalf("stats %+v, want %+v", res.stats, tc.stats)
			}
			if len(res.frames) != len(tc.frames) {
				t.Fatalf("%d frames, want %d", len(res.frames), len(tc.frames))
			}
			for i := range tc.frames {
				if !bytes.Equal(res.frames[i], tc.frames[i]) {
					t.Fatalf("frame %d is not the expected one", i)
				}
			}
		})
	}
}

func TestSplitJPEGOversizedBoundsMemory(t *testing.T) {
	big := jpegtest.Noise(t, 320, 240, 21) // noise: about 100 kB
	small := jpegtest.Noise(t, 16, 16, 22)
	limit := len(big) - 1
	stream := bytes.Join([][]byte{small, big, big, small}, nil)
	res := checkSplitInvariance(t, stream, limit, 3)
	want := SplitStats{Frames: 2, Oversized: 2}
	if res.stats != want || len(res.frames) != 2 {
		t.Fatalf("stats %+v with %d frames, want %+v", res.stats, len(res.frames), want)
	}
	// At exactly the limit the frame is kept.
	if res := splitAll(bytes.NewReader(big), len(big)); len(res.frames) != 1 || res.stats.Oversized != 0 {
		t.Fatalf("frame of exactly the limit: stats %+v", res.stats)
	}

	// Memory: an endless frame never grows the buffer past limit + one read.
	endless := io.MultiReader(bytes.NewReader(big[:len(big)/2]), &ffZeroReader{})
	s := NewSplitter(io.LimitReader(endless, 20<<20), 100<<10)
	if _, err := s.Next(); err != io.EOF {
		t.Fatalf("endless frame: %v", err)
	}
	if c := cap(s.buf); c > 100<<10+readChunk {
		t.Fatalf("buffer grew to %d bytes for a limit of %d", c, 100<<10)
	}
	if st := s.Stats(); st.Oversized != 1 || st.Truncated != 0 {
		t.Fatalf("endless frame stats %+v, want one oversized", st)
	}
}

// ffZeroReader is endless entropy-coded data full of stuffing.
type ffZeroReader struct{ n int }

func (r *ffZeroReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = [2]byte{0xFF, 0x00}[r.n%2]
		r.n++
	}
	return len(p), nil
}

func TestSplitJPEGReaderErrors(t *testing.T) {
	f1 := jpegtest.Noise(t, 16, 16, 31)
	boom := errors.New("boom")
	s := NewSplitter(io.MultiReader(bytes.NewReader(f1), iotest.ErrReader(boom)), 0)
	if f, err := s.Next(); err != nil || !bytes.Equal(f, f1) {
		t.Fatalf("first Next: %d bytes, %v", len(f), err)
	}
	for i := 0; i < 2; i++ { // sticky
		if _, err := s.Next(); err != boom {
			t.Fatalf("Next after read error: %v, want %v", err, boom)
		}
	}
	s = NewSplitter(emptyReader{}, 0)
	if _, err := s.Next(); err != io.ErrNoProgress {
		t.Fatalf("reader that never returns data: %v, want io.ErrNoProgress", err)
	}
}

type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, nil }

func TestJPEGFrameLen(t *testing.T) {
	f := jpegtest.Noise(t, 16, 16, 41)
	syn := testSynthetic()
	cases := []struct {
		name string
		b    []byte
		want int
	}{
		{"complete", f, len(f)},
		{"synthetic markers", syn, len(syn)},
		{"trailing bytes", append(bytes.Clone(f), 0, 0, 0), len(f)},
		{"truncated", f[:len(f)-2], -1},
		{"leading garbage", append([]byte{0}, f...), -1},
		{"second frame only complete", append(bytes.Clone(f[:20]), f...), -1},
		{"empty", nil, -1},
	}
	for _, tc := range cases {
		if got := FrameLen(tc.b); got != tc.want {
			t.Errorf("%s: jpegFrameLen = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// FuzzSplitJPEG checks, for any input and any way of cutting it into
// reads, that the splitter neither panics nor depends on the cut, and that
// every frame it returns is an in-order, non-overlapping SOI…EOI piece of
// the input within the limit.
func FuzzSplitJPEG(f *testing.F) {
	j := jpegtest.Noise(f, 16, 16, 51)
	f.Add(j, uint64(1), uint16(0))
	f.Add(append(append([]byte("xx\xff"), j...), j[:100]...), uint64(2), uint16(300))
	f.Add(testSynthetic(), uint64(3), uint16(40))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64, limit uint16) {
		maxFrame := int(limit) // 0 means the default
		res := checkSplitInvariance(t, data, maxFrame, seed)
		if res.err != io.EOF {
			t.Fatalf("end of input gave %v", res.err)
		}
		if maxFrame == 0 {
			maxFrame = DefaultSplitLimit
		}
		off, total := 0, uint64(0)
		for i, fr := range res.frames {
			if len(fr) < 4 || fr[0] != 0xFF || fr[1] != 0xD8 || fr[len(fr)-2] != 0xFF || fr[len(fr)-1] != 0xD9 {
				t.Fatalf("frame %d is not SOI…EOI: % x", i, fr[:min(len(fr), 16)])
			}
			if len(fr) > maxFrame {
				t.Fatalf("frame %d has %d bytes, over the limit %d", i, len(fr), maxFrame)
			}
			k := bytes.Index(data[off:], fr)
			if k < 0 {
				t.Fatalf("frame %d is not an in-order piece of the input", i)
			}
			off += k + len(fr)
			total += uint64(len(fr))
		}
		if res.stats.Frames != uint64(len(res.frames)) {
			t.Fatalf("stats count %d frames, %d returned", res.stats.Frames, len(res.frames))
		}
		if total+res.stats.Garbage > uint64(len(data)) {
			t.Fatalf("frames (%d bytes) and garbage (%d) exceed the input (%d)", total, res.stats.Garbage, len(data))
		}
		if n := FrameLen(data); n > len(data) || (n > 0 && n <= maxFrame &&
			(res.stats.Frames == 0 || !bytes.Equal(res.frames[0], data[:n]))) {
			t.Fatalf("jpegFrameLen %d disagrees with the splitter", n)
		}
	})
}
