package mjpeg

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"
	"testing"

	"framepush/capture/internal/jpegtest"
)

// segment is one header segment of a JPEG: its marker code and its
// bytes, marker included.
type segment struct {
	code byte
	raw  []byte
}

// headerSegments splits b's header (up to and excluding the first
// SOS) into segments, and returns the rest (SOS onwards). Test-only: it
// trusts b.
func headerSegments(t testing.TB, b []byte) ([]segment, []byte) {
	t.Helper()
	var segs []segment
	p := 2
	for {
		if b[p] != 0xFF {
			t.Fatalf("no marker at %d", p)
		}
		code := b[p+1]
		if code == markerSOS {
			return segs, b[p:]
		}
		n := int(b[p+2])<<8 | int(b[p+3])
		segs = append(segs, segment{code, b[p : p+2+n]})
		p += 2 + n
	}
}

// stripDHT returns b without its DHT segments, as UVC cameras send it.
func stripDHT(t testing.TB, b []byte) []byte {
	t.Helper()
	segs, rest := headerSegments(t, b)
	out := []byte{0xFF, markerSOI}
	stripped := 0
	for _, s := range segs {
		if s.code == markerDHT {
			stripped++
			continue
		}
		out = append(out, s.raw...)
	}
	if stripped == 0 {
		t.Fatal("frame had no DHT to strip")
	}
	return append(out, rest...)
}

func decodeJPEG(t testing.TB, b []byte) image.Image {
	t.Helper()
	m, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return m
}

// samePixels fails unless a and b decode to identical pixels.
func samePixels(t *testing.T, a, b image.Image) {
	t.Helper()
	if a.Bounds() != b.Bounds() {
		t.Fatalf("bounds %v vs %v", a.Bounds(), b.Bounds())
	}
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if a.At(x, y) != b.At(x, y) {
				t.Fatalf("pixel (%d,%d): %v vs %v", x, y, a.At(x, y), b.At(x, y))
			}
		}
	}
}

func TestStandardDHTIsWhatImageJPEGWrites(t *testing.T) {
	frame := jpegtest.Encode(t, jpegtest.Image(64, 48), 75)
	segs, _ := headerSegments(t, frame)
	var dht [][]byte
	for _, s := range segs {
		if s.code == markerDHT {
			dht = append(dht, s.raw)
		}
	}
	if len(dht) != 1 {
		t.Fatalf("image/jpeg wrote %d DHT segments, want 1", len(dht))
	}
	if !bytes.Equal(dht[0], standardDHT) {
		t.Fatalf("standard DHT differs from image/jpeg's:\n got % x\nwant % x", standardDHT, dht[0])
	}
	if len(standardDHT) != StandardDHTSize {
		t.Fatalf("DHT segment is %d bytes, StandardDHTSize says %d", len(standardDHT), StandardDHTSize)
	}
}

func TestFixMJPEGRestoresStrippedTables(t *testing.T) {
	for _, tc := range []struct {
		name string
		img  image.Image
	}{
		{"colour", jpegtest.Image(160, 120)},
		{"gray", func() image.Image {
			g := image.NewGray(image.Rect(0, 0, 97, 33)) // not a multiple of the MCU size
			for i := range g.Pix {
				g.Pix[i] = uint8(i * 31)
			}
			return g
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig := jpegtest.Encode(t, tc.img, 85)
			bare := stripDHT(t, orig)
			if _, err := jpeg.Decode(bytes.NewReader(bare)); err == nil {
				t.Fatal("image/jpeg decoded a frame without Huffman tables; the test proves nothing")
			}
			if err := Validate(bare); err != nil {
				t.Fatalf("a frame without DHT is structurally valid, got %v", err)
			}
			fixed, err := Fix(nil, bare)
			if err != nil {
				t.Fatal(err)
			}
			if err := Validate(fixed); err != nil {
				t.Fatalf("fixed frame invalid: %v", err)
			}
			if len(fixed) != len(bare)+StandardDHTSize {
				t.Fatalf("fixed frame is %d bytes, want %d", len(fixed), len(bare)+StandardDHTSize)
			}
			// The tables go in front of the frame header.
			segs, _ := headerSegments(t, fixed)
			var order []byte
			for _, s := range segs {
				order = append(order, s.code)
			}
			dhtAt, sofAt := bytes.IndexByte(order, markerDHT), bytes.IndexByte(order, 0xC0)
			if dhtAt < 0 || sofAt < 0 || dhtAt+1 != sofAt {
				t.Fatalf("segment order % x: want DHT right before SOF0", order)
			}
			samePixels(t, decodeJPEG(t, orig), decodeJPEG(t, fixed))
		})
	}
}

// TestFixMJPEGCameraStyleFrame uses a frame coded the way UVC cameras code
// MJPEG (4:2:2, restart markers, libjpeg), stripped of its tables and
// zero-padded: see testdata/mjpeg/README.md.
func TestFixMJPEGCameraStyleFrame(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", "mjpeg", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	orig, bare := read("bars422.jpg"), read("bars422-nodht.jpg")
	if bytes.HasSuffix(bare, []byte{0xFF, markerEOI}) {
		t.Fatal("fixture lost its zero padding")
	}
	if err := Validate(bare); err != nil {
		t.Fatalf("padded frame without tables: %v", err)
	}
	fixed, err := Fix(make([]byte, 0, len(bare)+StandardDHTSize), bare)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(fixed, []byte{0xFF, markerEOI}) {
		t.Fatal("FixMJPEG kept the zero padding")
	}
	if err := Validate(fixed); err != nil {
		t.Fatal(err)
	}
	got := decodeJPEG(t, fixed)
	if ycc, ok := got.(*image.YCbCr); !ok || ycc.SubsampleRatio != image.YCbCrSubsampleRatio422 {
		t.Fatalf("decoded %T, want a 4:2:2 YCbCr image", got)
	}
	samePixels(t, decodeJPEG(t, orig), got)
	bars := [8]color.RGBA{
		{191, 191, 191, 255}, {191, 191, 0, 255}, {0, 191, 191, 255}, {0, 191, 0, 255},
		{191, 0, 191, 255}, {191, 0, 0, 255}, {0, 0, 191, 255}, {16, 16, 16, 255},
	}
	for i, want := range bars {
		x, y := 40*i+20, 120 // the middle of bar i
		r, g, b, _ := got.At(x, y).RGBA()
		if !jpegtest.ColourNear([3]uint8{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8)}, want, 12) {
			t.Errorf("bar %d at (%d,%d): got %d,%d,%d, want about %v", i, x, y, r>>8, g>>8, b>>8, want)
		}
	}
}

func TestFixMJPEGKeepsFramesWithTables(t *testing.T) {
	orig := jpegtest.Encode(t, jpegtest.Image(32, 32), 90)
	padded := append(append([]byte(nil), orig...), 0, 0, 0, 0)
	out, err := Fix([]byte("prefix"), padded)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, append([]byte("prefix"), orig...)) {
		t.Fatal("a frame with its own tables was changed (or dst's contents lost)")
	}
}

func TestFixMJPEGLeavesArithmeticFramesAlone(t *testing.T) {
	// SOI, SOF9 (arithmetic, 8x8 gray), SOS, a few data bytes, EOI.
	frame := []byte{0xFF, 0xD8,
		0xFF, 0xC9, 0x00, 0x0B, 0x08, 0x00, 0x08, 0x00, 0x08, 0x01, 0x01, 0x11, 0x00,
		0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00,
		0x12, 0x34, 0xFF, 0x00, 0x56,
		0xFF, 0xD9}
	out, err := Fix(nil, frame)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, frame) {
		t.Fatal("arithmetic-coded frame got Huffman tables")
	}
	if err := Validate(out); err != nil {
		t.Fatal(err)
	}
}

func TestValidateJPEGRejectsEveryTruncation(t *testing.T) {
	frame := stripDHT(t, jpegtest.Encode(t, jpegtest.Image(48, 40), 80))
	for n := 0; n < len(frame); n++ {
		err := Validate(frame[:n])
		if !errors.Is(err, ErrTruncated) {
			t.Fatalf("frame cut to %d of %d bytes: got %v, want ErrTruncated", n, len(frame), err)
		}
		if n >= 2 {
			// A cut in the header is truncated for Fix too; a cut in
			// the scan is left for Validate to find.
			if _, ferr := Fix(nil, frame[:n]); ferr != nil && !errors.Is(ferr, ErrTruncated) {
				t.Fatalf("FixMJPEG on %d bytes: %v, want nil or ErrTruncated", n, ferr)
			}
		}
	}
	if err := Validate(frame); err != nil {
		t.Fatalf("whole frame: %v", err)
	}
}

func TestValidateJPEGRejectsCorruptFrames(t *testing.T) {
	good := jpegtest.Encode(t, jpegtest.Image(16, 16), 80)
	segs, scan := headerSegments(t, good)
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	var sof []byte
	var others [][]byte
	for _, s := range segs {
		if s.code == 0xC0 {
			sof = s.raw
		} else {
			others = append(others, s.raw)
		}
	}
	soi := []byte{0xFF, 0xD8}
	cases := map[string][]byte{
		"no SOI":             good[2:],
		"PNG":                []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR"),
		"data after EOI":     join(good, []byte{1, 2, 3}),
		"glued frames":       join(good[:len(good)-2], good),
		"scan before SOF":    join(soi, bytes.Join(others, nil), scan),
		"EOI before scan":    join(soi, sof, []byte{0xFF, 0xD9}),
		"length below 2":     join(soi, []byte{0xFF, 0xE0, 0x00, 0x01}, sof, scan),
		"garbage for marker": join(soi, []byte{0x12, 0x34}, good[2:]),
		"stuffing as marker": join(soi, []byte{0xFF, 0x00}, good[2:]),
	}
	for name, b := range cases {
		err := Validate(b)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if !errors.Is(err, ErrCorruptJPEG) {
			t.Errorf("%s: got %v, want ErrCorruptJPEG", name, err)
		}
	}
}

func TestValidateJPEGAcceptsFillBytesAndRestarts(t *testing.T) {
	good := jpegtest.Encode(t, jpegtest.Image(16, 16), 80)
	// Fill bytes (FF FF ...) may precede any marker.
	filled := append([]byte{0xFF, 0xD8, 0xFF, 0xFF}, good[2:]...)
	if err := Validate(filled); err != nil {
		t.Fatalf("fill bytes: %v", err)
	}
	bare := stripDHT(t, good)
	out, err := Fix(nil, append([]byte{0xFF, 0xD8, 0xFF, 0xFF}, bare[2:]...))
	if err != nil {
		t.Fatal(err)
	}
	samePixels(t, decodeJPEG(t, good), decodeJPEG(t, out))
}

func TestFixMJPEGAndValidateDoNotAllocate(t *testing.T) {
	bare := stripDHT(t, jpegtest.Encode(t, jpegtest.Image(320, 240), 80))
	dst := make([]byte, 0, len(bare)+StandardDHTSize)
	allocs := testing.AllocsPerRun(100, func() {
		out, err := Fix(dst[:0], bare)
		if err != nil {
			t.Fatal(err)
		}
		if err := Validate(out); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("FixMJPEG+ValidateJPEG with a big enough dst: %v allocs per frame, want 0", allocs)
	}
}
