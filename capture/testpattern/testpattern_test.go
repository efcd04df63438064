package testpattern

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"strings"
	"testing"
	"time"

	"framepush/frame"
)

// testClock is a fake clock advancing 40 ms per reading.
func testClock() func() time.Time {
	t := time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)
	return func() time.Time {
		t = t.Add(40 * time.Millisecond)
		return t
	}
}

func decode(t *testing.T, f frame.Frame) *image.YCbCr {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(f.Data))
	if err != nil {
		t.Fatalf("frame %d does not decode: %v", f.Seq, err)
	}
	ycc, ok := img.(*image.YCbCr)
	if !ok {
		t.Fatalf("frame %d decodes to %T, want a YCbCr JPEG", f.Seq, img)
	}
	return ycc
}

// changedFraction is the share of luma samples that differ by more than
// a JPEG's noise between two decoded frames.
func changedFraction(a, b *image.YCbCr) float64 {
	changed, total := 0, 0
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			d := int(a.Y[a.YOffset(x, y)]) - int(b.Y[b.YOffset(x, y)])
			if d > 24 || d < -24 {
				changed++
			}
			total++
		}
	}
	return float64(changed) / float64(total)
}

func TestTestPatternFramesDecodeAndChange(t *testing.T) {
	sizes := []struct{ w, h int }{{0, 0}, {1920, 1080}, {17, 33}, {16, 16}, {1000, 20}}
	for _, sz := range sizes {
		clock := testClock()
		p, err := New(Options{Width: sz.w, Height: sz.h, Name: "bench", Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		wantW, wantH := sz.w, sz.h
		if wantW == 0 {
			wantW, wantH = 640, 480
		}
		var prev frame.Frame
		var prevImg *image.YCbCr
		for i := 1; i <= 4; i++ {
			f, err := p.Capture(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if f.Seq != uint64(i) || f.Format != "jpeg" || f.Source != "testpattern:bench" || f.Time.IsZero() {
				t.Fatalf("%dx%d frame %d: seq %d format %q source %q time %v",
					wantW, wantH, i, f.Seq, f.Format, f.Source, f.Time)
			}
			img := decode(t, f)
			if b := img.Bounds(); b.Dx() != wantW || b.Dy() != wantH {
				t.Fatalf("frame decodes at %v, want %dx%d", b, wantW, wantH)
			}
			if prevImg != nil {
				if !f.Time.After(prev.Time) {
					t.Fatalf("frame time %v not after %v", f.Time, prev.Time)
				}
				if frac := changedFraction(prevImg, img); frac < 0.01 {
					t.Fatalf("%dx%d: frame %d differs from the previous one in only %.2f%% of pixels",
						wantW, wantH, i, 100*frac)
				}
				// The earlier frame's bytes are its own: still intact.
				if _, err := jpeg.Decode(bytes.NewReader(prev.Data)); err != nil {
					t.Fatalf("earlier frame was overwritten: %v", err)
				}
			}
			prev, prevImg = f, img
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// testDigitSegments lists the lit segments of 0–9 on a seven-segment
// display, written out independently of the glyph table under test.
var testDigitSegments = [10]string{"abcdef", "bc", "abdeg", "abcdg", "bcfg", "acdfg", "acdefg", "abc", "abcdefg", "abcdfg"}

// TestTestPatternDigits checks every digit's seven segments in the
// rendered image: lit exactly where a seven-segment display lights them.
func TestTestPatternDigits(t *testing.T) {
	p, err := New(Options{Now: testClock()})
	if err != nil {
		t.Fatal(err)
	}
	h := p.opts.Height
	margin := max(h/60, 2)
	for d := uint64(0); d <= 9; d++ {
		p.seq = d + 9 // the next frame is d+10: its second digit is d
		if _, err := p.Capture(context.Background()); err != nil {
			t.Fatal(err)
		}
		big := fitHeight([]byte("10"), h/5, p.opts.Width-4*margin)
		x := 2*margin + glyphWidth('1', big)
		y := 2 * margin
		w, th := big/2, max(big/8, 1)
		mid := y + big/2
		centres := [7]image.Point{
			{x + w/2, y + th/2},             // a
			{x + w - th/2 - 1, y + big/4},   // b
			{x + w - th/2 - 1, y + 3*big/4}, // c
			{x + w/2, y + big - th/2 - 1},   // d
			{x + th/2, y + 3*big/4},         // e
			{x + th/2, y + big/4},           // f
			{x + w/2, mid},                  // g
		}
		for seg, c := range centres {
			lit := p.img.Y[p.img.YOffset(c.X, c.Y)] == white
			if want := strings.ContainsRune(testDigitSegments[d], rune('a'+seg)); lit != want {
				t.Errorf("digit %d segment %c: lit=%v, want %v", d, 'a'+seg, lit, want)
			}
		}
	}
}

func TestTestPatternOptionsAndLifecycle(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{Width: 15}, "width 15 is out of range (allowed 16 to 8192"},
		{Options{Height: 9000}, "height 9000 is out of range"},
		{Options{JPEGQuality: 101}, "quality 101 is out of range (allowed 1 to 100)"},
		{Options{JPEGQuality: -1}, "quality -1"},
	} {
		if _, err := New(tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want it to mention %q", tc.opts, err, tc.want)
		}
	}
	p, err := New(Options{Width: 64, Height: 48})
	if err != nil {
		t.Fatal(err)
	}
	if p.source != "testpattern" {
		t.Errorf("unnamed source is %q", p.source)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Capture(ctx); err != context.Canceled {
		t.Fatalf("cancelled capture: %v", err)
	}
	if f, err := p.Capture(context.Background()); err != nil || f.Seq != 1 {
		t.Fatalf("capture after a cancelled one: seq %d, %v (a failed call must not use a number)", f.Seq, err)
	}
	p.Close()
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := p.Capture(context.Background()); err == nil || !strings.Contains(err.Error(), "after close") {
		t.Fatalf("capture after close: %v", err)
	}
}

// TestTestPatternAllocations pins the reuse: per frame, the owned copy plus
// the encoder's few internal allocations, independent of the image size.
func TestTestPatternAllocations(t *testing.T) {
	p, err := New(Options{Width: 320, Height: 240})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p.Capture(ctx) // grow the encode buffer once
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := p.Capture(ctx); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 8 {
		t.Fatalf("%.0f allocations per frame; rendering or encoding stopped reusing its buffers", allocs)
	}
}
