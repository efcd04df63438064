package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"framepush/receiver"
	"framepush/sender"
	"framepush/wire"
)

// benchSizes are the frame sizes compared: 16 KiB (a small JPEG), 64 KiB
// (a 720p JPEG), 200 KiB (1080p, over what the seed server keeps), 1 MiB,
// 2 MiB and 8 MiB (raw or high-quality stills).
var benchSizes = []int{16 << 10, 64 << 10, 200 << 10, 1 << 20, 2 << 20, 8 << 20}

func sizeName(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dKiB", n>>10)
}

// BenchmarkRawTCP is the reference: per frame the client writes n bytes on
// one loopback connection and the server reads them all into a 128 KiB
// buffer (framerecv's copy size) and answers with one byte. That is the
// least any request-acknowledge protocol can cost here.
func BenchmarkRawTCP(b *testing.B) {
	for _, n := range benchSizes {
		b.Run("size="+sizeName(n), func(b *testing.B) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			done := make(chan struct{})
			go func() {
				defer close(done)
				c, err := l.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				buf := make([]byte, 128<<10)
				ack := []byte{1}
				for {
					for got := 0; got < n; {
						k, err := c.Read(buf[:min(len(buf), n-got)])
						got += k
						if err != nil {
							return
						}
					}
					if _, err := c.Write(ack); err != nil {
						return
					}
				}
			}()
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			p := payload(n, 1)
			var ack [1]byte
			b.SetBytes(int64(n))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := c.Write(p); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, ack[:]); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
			c.Close()
			<-done
		})
	}
}

// BenchmarkSendReceive is the sender and the reference receiver on
// loopback, persistent connection, SIZE terminated by LF (no settle wait),
// each frame stored in a file (fsync off, then on) before GOT IMAGE.
// Compare with BenchmarkRawTCP at the same size (scripts/bench.sh prints
// the ratios). Stored files are deleted in the background.
func BenchmarkSendReceive(b *testing.B) {
	for _, fsync := range []bool{false, true} {
		for _, n := range benchSizes {
			if fsync && n < 200<<10 {
				continue // the fsync cost is shown at the larger sizes
			}
			b.Run(fmt.Sprintf("fsync=%v/size=%s", fsync, sizeName(n)), func(b *testing.B) {
				benchSend(b, sender.Options{Mode: sender.ModePersistent, Terminator: wire.TermLF}, !fsync, n)
			})
		}
	}
}

// BenchmarkSeedMode is the seed's exchange: one connection per frame and
// an unterminated "SIZE <n>", so the receiver waits its settle window
// (wire.DefaultSettle) after every SIZE: the cost of pairing with the seed protocol.
// term=lf keeps one connection per frame but terminates the line, which
// leaves only the connection set-up.
func BenchmarkSeedMode(b *testing.B) {
	for _, term := range []wire.Terminator{wire.TermNone, wire.TermLF} {
		for _, n := range []int{16 << 10, 200 << 10} {
			b.Run(fmt.Sprintf("term=%v/size=%s", term, sizeName(n)), func(b *testing.B) {
				benchSend(b, sender.Options{Mode: sender.ModeSeed, Terminator: term}, true, n)
			})
		}
	}
}

func benchSend(b *testing.B, o sender.Options, noFsync bool, n int) {
	remove := make(chan string, 1024)
	removed := make(chan struct{})
	go func() {
		for p := range remove {
			os.Remove(p)
		}
		close(removed)
	}()
	srv, err := receiver.New(receiver.Options{
		Dir: b.TempDir(), NoFsync: noFsync, MinFreeBytes: -1,
		OnFrame: func(st receiver.Stored) { remove <- st.Path },
	})
	if err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(l)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		close(remove)
		<-removed
	}()
	o.Addresses = []string{l.Addr().String()}
	s, err := sender.New(o)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(context.Background())
	f := frameOf(1, payload(n, 1))
	ctx := context.Background()
	if err := s.Send(ctx, f); err != nil { // connect outside the timing
		b.Fatal(err)
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := s.Send(ctx, f); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}
