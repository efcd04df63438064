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

func benchReceive(b *testing.B, size int, fsync bool) {
	remove := make(chan string, 4096)
	removed := make(chan struct{})
	go func() {
		for p := range remove {
			os.Remove(p)
		}
		close(removed)
	}()
	s, err := New(Options{
		Dir: b.TempDir(), NoFsync: !fsync, MinFreeBytes: -1,
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
	head := wire.AppendSize(nil, int64(size), nil, wire.TermLF)
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
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}
