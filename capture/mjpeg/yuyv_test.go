package mjpeg

import (
	"bytes"
	"errors"
	"image"
	"strings"
	"testing"

	"framepush/capture/internal/jpegtest"
)

func TestYUYVEncoderColourBars(t *testing.T) {
	for _, tc := range []struct {
		name          string
		w, h, stride  int
		full          bool
		quality       int
		wantTolerance int
	}{
		{"limited range, packed rows", 288, 64, 0, false, 90, 8},
		{"limited range, padded rows", 288, 64, 2*288 + 64, false, 90, 8},
		{"full range", 144, 32, 0, true, 95, 6},
		{"default quality", 144, 32, 0, false, 0, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stride := tc.stride
			if stride == 0 {
				stride = 2 * tc.w
			}
			enc, err := NewYUYVEncoder(YUYVOptions{Width: tc.w, Height: tc.h, Stride: tc.stride, Quality: tc.quality, FullRange: tc.full})
			if err != nil {
				t.Fatal(err)
			}
			frame := jpegtest.BarsFrame(tc.w, tc.h, stride, tc.full)
			out, err := enc.EncodeFrame(nil, frame)
			if err != nil {
				t.Fatal(err)
			}
			if err := Validate(out); err != nil {
				t.Fatal(err)
			}
			jpegtest.CheckBars(t, out, tc.w, tc.h, tc.wantTolerance)
		})
	}
}

func TestYUYVEncoderMapsSamplesOntoPlanes(t *testing.T) {
	// Two rows of two pixel pairs with distinct samples, full range so the
	// values pass through unchanged.
	src := []byte{
		10, 20, 11, 30, 12, 21, 13, 31, 0xEE, 0xEE, // row 0 + 2 bytes padding
		40, 50, 41, 60, 42, 51, 43, 61, 0xEE, 0xEE,
	}
	enc, err := NewYUYVEncoder(YUYVOptions{Width: 4, Height: 2, Stride: 10, FullRange: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := enc.Load(src); err != nil {
		t.Fatal(err)
	}
	m := enc.Image()
	if m.SubsampleRatio != image.YCbCrSubsampleRatio422 {
		t.Fatalf("subsampling %v, want 4:2:2", m.SubsampleRatio)
	}
	for _, c := range []struct {
		name string
		got  []byte
		want []byte
	}{
		{"Y row 0", m.Y[0:4], []byte{10, 11, 12, 13}},
		{"Y row 1", m.Y[m.YStride : m.YStride+4], []byte{40, 41, 42, 43}},
		{"Cb row 0", m.Cb[0:2], []byte{20, 21}},
		{"Cr row 1", m.Cr[m.CStride : m.CStride+2], []byte{60, 61}},
	} {
		if !bytes.Equal(c.got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}

	// Limited range: 16 is black, 235 white, 128 neutral chroma.
	limited, _ := NewYUYVEncoder(YUYVOptions{Width: 2, Height: 1})
	if err := limited.Load([]byte{16, 16, 235, 240}); err != nil {
		t.Fatal(err)
	}
	lm := limited.Image()
	if lm.Y[0] != 0 || lm.Y[1] != 255 || lm.Cb[0] > 1 || lm.Cr[0] != 255 { // chroma 16 is -127.5 from neutral
		t.Fatalf("limited range not expanded: Y %v Cb %v Cr %v", lm.Y[:2], lm.Cb[:1], lm.Cr[:1])
	}
	if yuyvChromaFull[128] != 128 {
		t.Fatalf("neutral chroma maps to %d", yuyvChromaFull[128])
	}
}

func TestYUYVEncoderReusesBuffers(t *testing.T) {
	enc, err := NewYUYVEncoder(YUYVOptions{Width: 64, Height: 48})
	if err != nil {
		t.Fatal(err)
	}
	frame := jpegtest.BarsFrame(64, 48, 128, false)
	first, err := enc.EncodeFrame(nil, frame)
	if err != nil {
		t.Fatal(err)
	}
	img := enc.Image()
	dst := make([]byte, 0, 2*len(first))
	second, err := enc.EncodeFrame(dst, frame)
	if err != nil {
		t.Fatal(err)
	}
	if enc.Image() != img {
		t.Fatal("the image was reallocated between frames")
	}
	if &second[0] != &dst[:1][0] {
		t.Fatal("Encode did not write into the room dst had")
	}
	if !bytes.Equal(first, second) {
		t.Fatal("the same frame encoded differently")
	}
}

func TestYUYVEncoderRejects(t *testing.T) {
	for _, tc := range []struct {
		o    YUYVOptions
		want string
	}{
		{YUYVOptions{Width: 0, Height: 10}, "must be positive"},
		{YUYVOptions{Width: 11, Height: 10}, "width 11 is odd"},
		{YUYVOptions{Width: 10, Height: 10, Stride: 12}, "shorter than 2*width (20)"},
		{YUYVOptions{Width: 10, Height: 10, Quality: 101}, "quality 101 is outside 1..100"},
	} {
		if _, err := NewYUYVEncoder(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want an error containing %q", tc.o, err, tc.want)
		}
	}
	enc, err := NewYUYVEncoder(YUYVOptions{Width: 8, Height: 4, Stride: 20})
	if err != nil {
		t.Fatal(err)
	}
	if enc.FrameSize() != 20*3+16 {
		t.Fatalf("FrameSize %d", enc.FrameSize())
	}
	if err := enc.Load(make([]byte, enc.FrameSize()-1)); !errors.Is(err, ErrTruncated) {
		t.Fatalf("short frame: %v, want ErrTruncated", err)
	}
	// The last row needs no padding.
	if err := enc.Load(make([]byte, enc.FrameSize())); err != nil {
		t.Fatalf("frame without last-row padding: %v", err)
	}
}
