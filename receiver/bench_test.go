package receiver

import (
	"context"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"framepush/wire"
)

// BenchmarkReceive measures receive throughput over loopback: one
// persistent client sending frames with a terminated SIZE line (no settle
// wait), each stored (and, with fsync=true, made durable) before the next.
// Stored files are deleted in the background so long runs do not fill the
// disk. Allocations include the client's, which are none per frame.
//
//	go test -run '^$' -bench Receive -benchmem ./receiver
func BenchmarkReceive(b *testing.B) {
	for _, fsync := range []bool{false, true} {
		for _, size := range []int{64 << 10, 1 << 20, 8 << 20} {
			b.Run(fmt.Sprintf("fsync=%v/size=%dKiB", fsync, size>>10), func(b *testing.B) {
				benchReceive(b, size, fsync)
			})
		}
	}
}

// BenchmarkSettleWindow measures what the settle window costs a client
// that sends the seed's unterminated "SIZE <n>" and waits for each answer
// (4 KiB frames, no fsync, one persistent connection), against the same
// client with a terminated line measured in the same run: the receiver
// waits one window of silence per frame, so such a client is capped near
// 1/window frames per second. Numbers are in docs/PROTOCOL.md.
//
//	go test -run '^$' -bench SettleWindow -benchmem ./receiver
func BenchmarkSettleWindow(b *testing.B) {
	const size = 4 << 10
	var ref float64
	b.Run("terminated", func(b *testing.B) {
		ref = benchFrames(b, size, false, wire.TermLF, 0)
	})
	for _, settle := range []time.Duration{2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond} {
		b.Run(fmt.Sprintf("unterminated/settle=%v", settle), func(b *testing.B) {
			fps := benchFrames(b, size, false, wire.TermNone, settle)
			if ref > 0 {
				b.ReportMetric(fps/ref, "x-terminated")
			}
			b.ReportMetric(fps*settle.Seconds(), "x-1/settle")
		})
	}
}

func benchReceive(b *testing.B, size int, fsync bool) {
	benchFrames(b, size, fsync, wire.TermLF, 0)
}

// benchFrames sends frames of size bytes with the given SIZE terminator
// and returns the frames per second it measured.
func benchFrames(b *testing.B, size int, fsync bool, term wire.Terminator, settle time.Duration) float64 {
	remove := make(chan string, 4096)
	removed := make(chan struct{})
	go func() {
		for p := range remove {
			os.Remove(p)
		}
		close(removed)
	}()
	s, err := New(Options{
		Dir: b.TempDir(), NoFsync: !fsync, MinFreeBytes: -1, Settle: settle,
		OnFrame: func(st Stored) { remove <- st.Path },
	})
	if err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go s.Serve(l)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		close(remove)
		<-removed
	}()

	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ar := wire.NewAnswerReader(c)
	p := payload(size, jpegMagic, 1)
	head := wire.AppendSize(nil, int64(size), nil, term)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Write(head); err != nil {
			b.Fatal(err)
		}
		if err := ar.Expect(wire.GotSize); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Write(p); err != nil {
			b.Fatal(err)
		}
		if err := ar.Expect(wire.GotImage); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	fps := float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(fps, "frames/s")
	return fps
}
