package mjpeg

import (
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"testing"
)

// benchJPEGCameraFrame makes a YUYV frame with the detail of a real scene
// (gradients plus fine texture), so encoding cost is not flattered by flat
// colour.
func benchJPEGCameraFrame(w, h int) []byte {
	frame := make([]byte, 2*w*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x += 2 {
			i := 2 * (y*w + x)
			frame[i] = uint8(16 + (x*3+y*5+(x*y)%37)%220)
			frame[i+1] = uint8(64 + (x/4)%128)
			frame[i+2] = uint8(16 + ((x+1)*3+y*5+((x+1)*y)%41)%220)
			frame[i+3] = uint8(64 + (y/4)%128)
		}
	}
	return frame
}

// BenchmarkYUYVToJPEG measures the whole per-frame cost of a YUYV camera:
// de-interleaving out of the driver buffer plus JPEG encoding, at the
// default quality.
func BenchmarkYUYVToJPEG(b *testing.B) {
	for _, sz := range []struct{ w, h int }{{640, 480}, {1280, 720}} {
		b.Run(fmt.Sprintf("%dx%d", sz.w, sz.h), func(b *testing.B) {
			enc, err := NewYUYVEncoder(YUYVOptions{Width: sz.w, Height: sz.h})
			if err != nil {
				b.Fatal(err)
			}
			frame := benchJPEGCameraFrame(sz.w, sz.h)
			var out []byte
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				if out, err = enc.EncodeFrame(out[:0], frame); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
			b.ReportMetric(float64(len(out)), "bytes/frame")
		})
	}
}

// BenchmarkYUYVLoad isolates the de-interleave, the part done while the
// driver buffer is held.
func BenchmarkYUYVLoad(b *testing.B) {
	enc, err := NewYUYVEncoder(YUYVOptions{Width: 1280, Height: 720})
	if err != nil {
		b.Fatal(err)
	}
	frame := benchJPEGCameraFrame(1280, 720)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if err := enc.Load(frame); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMJPEGFixValidate measures the per-frame work on a UVC MJPEG
// frame that lacks its Huffman tables: DHT insertion into a reused buffer
// plus the structural check. It must not allocate.
func BenchmarkMJPEGFixValidate(b *testing.B) {
	for _, sz := range []struct{ w, h int }{{640, 480}, {1280, 720}} {
		b.Run(fmt.Sprintf("%dx%d", sz.w, sz.h), func(b *testing.B) {
			enc, err := NewYUYVEncoder(YUYVOptions{Width: sz.w, Height: sz.h})
			if err != nil {
				b.Fatal(err)
			}
			full, err := enc.EncodeFrame(nil, benchJPEGCameraFrame(sz.w, sz.h))
			if err != nil {
				b.Fatal(err)
			}
			bare := stripDHT(b, full)
			dst := make([]byte, 0, len(bare)+StandardDHTSize)
			b.SetBytes(int64(len(bare)))
			b.ReportAllocs()
			for b.Loop() {
				out, err := Fix(dst[:0], bare)
				if err != nil {
					b.Fatal(err)
				}
				if err := Validate(out); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
		})
	}
}

// BenchmarkYUYVToJPEGViaRGBA is the round trip YUYVEncoder avoids
// (YUYV → RGBA → image/jpeg, which converts back to YCbCr), for comparison.
func BenchmarkYUYVToJPEGViaRGBA(b *testing.B) {
	const w, h = 640, 480
	frame := benchJPEGCameraFrame(w, h)
	rgba := image.NewRGBA(image.Rect(0, 0, w, h))
	var sink yuyvSink
	b.ReportAllocs()
	for b.Loop() {
		for y := 0; y < h; y++ {
			for x := 0; x < w; x += 2 {
				q := frame[2*(y*w+x):]
				for k := 0; k < 2; k++ {
					r, g, bl := color.YCbCrToRGB(yuyvLumaFull[q[2*k]], yuyvChromaFull[q[1]], yuyvChromaFull[q[3]])
					o := rgba.PixOffset(x+k, y)
					rgba.Pix[o], rgba.Pix[o+1], rgba.Pix[o+2], rgba.Pix[o+3] = r, g, bl, 255
				}
			}
		}
		sink.b = sink.b[:0]
		if err := jpeg.Encode(&sink, rgba, &jpeg.Options{Quality: DefaultJPEGQuality}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}
