package view

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"framepush/internal/testutil/pushtest"
	"framepush/receiver"
)

// BenchmarkDeliveryWithViewers measures frame delivery over loopback (one
// persistent client, 64 KiB frames, no fsync) with the view keeping every
// frame and MJPEG viewers attached, against the same receiver without the
// view measured in the same run (x-reference: 1 means viewers cost
// delivery nothing; the machine's other work makes it vary by a few %).
// Stalled viewers cost nothing (they never hold the receiver). Readers that
// keep up compete for the CPU: at thousands of frames per second on two
// cores, 4 readers each copying every 64 KiB frame cost delivery about 40%
// (measured: 0.93 view alone, 0.60 with 4 readers, 0.99 with 4 stalled);
// at camera rates (tens of frames per second) that is noise.
//
//	go test -run '^$' -bench DeliveryWithViewers -benchmem ./view
func BenchmarkDeliveryWithViewers(b *testing.B) {
	var ref float64
	b.Run("reference-no-view", func(b *testing.B) { ref = benchDelivery(b, false, 0, 0) })
	for _, c := range []struct{ readers, stalled int }{{0, 0}, {4, 0}, {0, 4}} {
		b.Run(fmt.Sprintf("view/readers=%d/stalled=%d", c.readers, c.stalled), func(b *testing.B) {
			fps := benchDelivery(b, true, c.readers, c.stalled)
			if ref > 0 {
				b.ReportMetric(fps/ref, "x-reference")
			}
		})
	}
}

func benchDelivery(b *testing.B, withView bool, readers, stalled int) float64 {
	remove := make(chan string, 4096)
	go func() {
		for p := range remove {
			os.Remove(p)
		}
	}()
	defer close(remove)
	d := New(Options{})
	opt := receiver.Options{Dir: b.TempDir(), NoFsync: true, MinFreeBytes: -1, Logger: slog.New(slog.DiscardHandler)}
	opt.OnFrame = func(s receiver.Stored) { remove <- s.Path }
	if withView {
		opt.KeepData = 8 << 20
		opt.OnFrame = func(s receiver.Stored) { d.Record(s); remove <- s.Path }
	}
	srv, err := receiver.New(opt)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(ln)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	ctx, cancel := context.WithCancel(context.Background())
	web := httptest.NewServer(d.Handler(ctx, HandlerOptions{}))
	defer web.Close()
	defer cancel()

	frame := make([]byte, 64<<10)
	copy(frame, "\xff\xd8\xff")
	p := pushtest.Dial(b, ln.Addr().String())
	p.MustSend("cam", "r-1", frame)
	for range readers {
		resp, err := http.Get(web.URL + "/devices/cam/stream.mjpg")
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		go io.Copy(io.Discard, resp.Body)
	}
	for range stalled {
		c, err := net.Dial("tcp", web.Listener.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /devices/cam/stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")
	}
	b.SetBytes(int64(len(frame)))
	b.ResetTimer()
	began := time.Now()
	for i := range b.N {
		p.MustSend("cam", fmt.Sprintf("r-%d", i+2), frame)
	}
	fps := float64(b.N) / time.Since(began).Seconds()
	b.StopTimer()
	b.ReportMetric(fps, "frames/s")
	return fps
}
