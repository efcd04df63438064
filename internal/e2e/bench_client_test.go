package e2e

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"framepush/receiver"
	"framepush/sender"
	"framepush/wire"
)

// BenchmarkSenderVsMinimal compares framepush's sender with a minimal
// stop-and-wait client loop written here (terminated SIZE line, wait for
// GOT SIZE, payload, wait for GOT IMAGE: nothing else), against the same
// framerecv (fsync off) in the same run, in alternating batches of 64
// frames so both see the same load. Reported: frames/s of each and
// x-minimal for the sender stop-and-wait (Send, persistent, LF) and with
// its window (Submit, window on). Set FRAMEPUSH_BENCH_DIR=/dev/shm to
// keep the disk out of it.
//
//	go test -run '^$' -bench SenderVsMinimal ./internal/e2e
func BenchmarkSenderVsMinimal(b *testing.B) {
	for _, size := range []int{16 << 10, 64 << 10, 1 << 20} {
		b.Run("size="+sizeName(size), func(b *testing.B) {
			dir := benchDir(b)
			addr := startBenchReceiver(b, dir)
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			p := payload(size, 1)
			line := []byte("SIZE " + strconv.Itoa(size) + "\n")
			var ans [16]byte
			minimal := func() {
				if _, err := c.Write(line); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, ans[:len(wire.GotSize)]); err != nil {
					b.Fatal(err)
				}
				if _, err := c.Write(p); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, ans[:len(wire.GotImage)]); err != nil {
					b.Fatal(err)
				}
			}
			plain := newSender(b, sender.Options{Addresses: []string{addr}, Mode: sender.ModePersistent, Terminator: wire.TermLF})
			piped := newSender(b, sender.Options{Addresses: []string{addr}, Mode: sender.ModePersistent, Terminator: wire.TermLF,
				Window: sender.Window{Frames: sender.DefaultWindowFrames, Bytes: sender.DefaultWindowBytes}})
			f := frameOf(1, p)
			ctx := context.Background()
			fail := func(o sender.Outcome) {
				if o.Err != nil {
					b.Fatal(o.Err)
				}
			}
			runs := []struct {
				batch func()
				wall  time.Duration
				n     int
			}{
				{batch: func() {
					for range 64 {
						minimal()
					}
				}},
				{batch: func() {
					for range 64 {
						if err := plain.Send(ctx, f); err != nil {
							b.Fatal(err)
						}
					}
				}},
				{batch: func() {
					for range 64 {
						piped.Submit(ctx, f, nil, fail)
					}
					piped.Flush(ctx, fail)
				}},
			}
			for i := range runs { // connect, negotiate, make folders: untimed
				runs[i].batch()
			}
			clean(b, dir)
			b.SetBytes(int64(size))
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				r := &runs[i%len(runs)]
				t0 := time.Now()
				r.batch()
				r.wall += time.Since(t0)
				r.n += 64
				clean(b, dir) // every batch starts with an empty folder
			}
			b.StopTimer()
			fps := func(i int) float64 { return float64(runs[i].n) / runs[i].wall.Seconds() }
			if runs[2].n == 0 {
				return
			}
			b.ReportMetric(fps(0), "minimal-frames/s")
			b.ReportMetric(fps(1), "sender-frames/s")
			b.ReportMetric(fps(2), "window-frames/s")
			b.ReportMetric(fps(1)/fps(0), "x-minimal")
			b.ReportMetric(fps(2)/fps(0), "window-x-minimal")
		})
	}
}

func startBenchReceiver(b *testing.B, dir string) string {
	srv, err := receiver.New(receiver.Options{Dir: dir, NoFsync: true, MinFreeBytes: -1})
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
	return l.Addr().String()
}

// clean removes the stored files with the timer stopped.
func clean(b *testing.B, dir string) {
	b.StopTimer()
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			os.Remove(p)
		}
		return nil
	})
	b.StartTimer()
}

// benchDir is a fresh folder under $FRAMEPUSH_BENCH_DIR (/dev/shm, say),
// else the test's temporary folder.
func benchDir(b *testing.B) string {
	root := os.Getenv("FRAMEPUSH_BENCH_DIR")
	if root == "" {
		return b.TempDir()
	}
	d, err := os.MkdirTemp(root, "framepush-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(d) })
	return d
}
