package mjpeg

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"

	"framepush/capture/internal/jpegtest"
	"framepush/capture/testpattern"
)

// BenchmarkTestPattern measures rendering plus JPEG encoding per frame:
// the ceiling of the default source's frame rate on this machine.
func BenchmarkTestPattern(b *testing.B) {
	for _, sz := range []struct{ w, h int }{{640, 480}, {1920, 1080}} {
		b.Run(fmt.Sprintf("%dx%d", sz.w, sz.h), func(b *testing.B) {
			p, err := testpattern.New(testpattern.Options{Width: sz.w, Height: sz.h})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			var size int
			b.ReportAllocs()
			for b.Loop() {
				f, err := p.Capture(ctx)
				if err != nil {
					b.Fatal(err)
				}
				size = len(f.Data)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
			b.ReportMetric(float64(size), "bytes/frame")
		})
	}
}

// benchChunkReader returns at most n bytes per Read, like a pipe.
type benchChunkReader struct {
	r io.Reader
	n int
}

func (c *benchChunkReader) Read(p []byte) (int, error) {
	return c.r.Read(p[:min(len(p), c.n)])
}

// BenchmarkJPEGSplitter measures splitting throughput on a stream of
// test-pattern frames (few FF bytes) and of noise frames (FF 00 stuffing
// everywhere), read in pipe-sized and in small pieces.
func BenchmarkJPEGSplitter(b *testing.B) {
	p, err := testpattern.New(testpattern.Options{Width: 1280, Height: 720})
	if err != nil {
		b.Fatal(err)
	}
	var pattern, noise bytes.Buffer
	for i := 0; i < 16; i++ {
		f, err := p.Capture(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		pattern.Write(f.Data)
		noise.Write(jpegtest.Noise(b, 320, 240, uint64(i)))
	}
	for _, stream := range []struct {
		name string
		data []byte
	}{{"pattern", pattern.Bytes()}, {"noise", noise.Bytes()}} {
		for _, chunk := range []int{64 << 10, 4 << 10} {
			b.Run(fmt.Sprintf("%s/read%dk", stream.name, chunk>>10), func(b *testing.B) {
				b.SetBytes(int64(len(stream.data)))
				b.ReportAllocs()
				r := bytes.NewReader(stream.data)
				for b.Loop() {
					r.Reset(stream.data)
					s := NewSplitter(&benchChunkReader{r, chunk}, 0)
					n := 0
					for {
						if _, err := s.Next(); err != nil {
							break
						}
						n++
					}
					if n != 16 {
						b.Fatalf("split %d frames, want 16", n)
					}
				}
			})
		}
	}
}
