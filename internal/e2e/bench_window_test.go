package e2e

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"

	"framepush/frame"
	"framepush/receiver"
	"framepush/sender"
	"framepush/wire"
)

// BenchmarkWindowLink measures what the pipelining window buys on a slow
// link: sender -> toxiproxy (latency each way, 20 Mbit/s towards the
// receiver) -> framerecv (fsync off: the link is measured, not the disk),
// 50 KB frames. In one run: frames/s stop-and-wait (persistent, SIZE
// terminated by LF: the best the plain handshake does), with the default
// window (sender.DefaultWindowFrames frames, DefaultWindowBytes), and the
// link's own limit (bandwidth / frame size), with the ratios x-link
// (target >= 0.9) and x-stop-and-wait (target >= 5). Each figure is the
// whole transfer after the connection is up (negotiation excluded, the
// window's first and last round trips included).
//
//	go test -run '^$' -bench WindowLink -benchtime 1x ./internal/e2e
func BenchmarkWindowLink(b *testing.B) {
	const (
		frameSize = 50_000
		rate      = 20_000_000 / 8 // bytes/s
	)
	for _, tc := range []struct {
		delay        time.Duration // each way
		plain, piped int           // frames measured
	}{
		{25 * time.Millisecond, 30, 400},
		{300 * time.Millisecond, 5, 400},
	} {
		b.Run(fmt.Sprintf("delay=%v", tc.delay), func(b *testing.B) {
			addr := slowLink(b, tc.delay, rate)
			link := float64(rate) / frameSize
			var plain, piped float64
			for b.Loop() {
				plain = linkRun(b, addr, sender.Window{}, tc.plain, frameSize)
				piped = linkRun(b, addr, sender.Window{Frames: sender.DefaultWindowFrames, Bytes: sender.DefaultWindowBytes}, tc.piped, frameSize)
			}
			b.ReportMetric(plain, "stop-and-wait-frames/s")
			b.ReportMetric(piped, "window-frames/s")
			b.ReportMetric(link, "link-frames/s")
			b.ReportMetric(piped/link, "x-link")
			b.ReportMetric(piped/plain, "x-stop-and-wait")
		})
	}
}

// slowLink starts framerecv behind a toxiproxy adding delay each way and
// limiting the sender's direction to rate bytes/s; it returns the proxy's
// address.
func slowLink(b *testing.B, delay time.Duration, rate int) string {
	srv, err := receiver.New(receiver.Options{Dir: b.TempDir(), NoFsync: true, MinFreeBytes: -1})
	if err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(l)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	api := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	p := toxiproxy.NewProxy(api, strings.ReplaceAll(b.Name(), "/", "_"), "127.0.0.1:0", l.Addr().String())
	if err := p.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Stop)
	ms := delay.Milliseconds()
	for _, js := range []string{
		fmt.Sprintf(`{"name":"lat_up","type":"latency","stream":"upstream","attributes":{"latency":%d}}`, ms),
		fmt.Sprintf(`{"name":"bw_up","type":"bandwidth","stream":"upstream","attributes":{"rate":%d}}`, rate/1000),
		fmt.Sprintf(`{"name":"lat_down","type":"latency","stream":"downstream","attributes":{"latency":%d}}`, ms),
	} {
		if _, err := p.Toxics.AddToxicJson(strings.NewReader(js)); err != nil {
			b.Fatalf("toxic %s: %v", js, err)
		}
	}
	return p.Listen
}

// linkRun delivers n frames through addr with window w after one frame
// that opens the connection (not timed), and returns frames/s.
func linkRun(b *testing.B, addr string, w sender.Window, n, size int) float64 {
	s, err := sender.New(sender.Options{Addresses: []string{addr}, Mode: sender.ModePersistent, Terminator: wire.TermLF,
		Window: w, AnswerTimeout: 30 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	frames := make([]frame.Frame, n+1)
	for i := range frames {
		frames[i] = frameOf(i+1, payload(size, uint64(i+1)))
	}
	failed := 0
	done := func(o sender.Outcome) {
		if o.Err != nil {
			failed++
			b.Errorf("frame %d: %v", o.Tag.(int), o.Err)
		}
	}
	s.Submit(ctx, frames[0], 0, done)
	s.Flush(ctx, done)
	start := time.Now()
	for i := 1; i <= n; i++ {
		s.Submit(ctx, frames[i], i, done)
	}
	s.Flush(ctx, done)
	took := time.Since(start)
	if failed > 0 {
		b.Fatalf("%d frames failed", failed)
	}
	if w.Frames > 1 && s.Stats().Pipelined == 0 {
		b.Fatal("the window was not granted")
	}
	return float64(n) / took.Seconds()
}
