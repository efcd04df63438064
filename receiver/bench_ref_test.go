package receiver

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"framepush/wire"
)

// BenchmarkVsReference compares framerecv with a minimal reference server
// written here that does the same file work per frame (read the SIZE line,
// answer GOT SIZE, copy the payload into a temporary file in the target
// folder, fsync it when asked, rename it, fsync the folder when asked,
// answer GOT IMAGE) and nothing else: no limits, no checks, no metrics.
// Both are driven by the same minimal stop-and-wait client (terminated
// SIZE line) in the same run, into the same kind of folder; stored files
// are removed between batches with the timer stopped, so no deletion runs
// while frames are created. Reported per size: frames/s of each, their
// ratio (x-reference, the target is >= 0.8), and the CPU time of the whole
// process (client and server: the client is the same in both, so the
// difference is the server's) per frame.
//
//	go test -run '^$' -bench VsReference -benchmem ./receiver
func BenchmarkVsReference(b *testing.B) {
	for _, fsync := range []bool{false, true} {
		for _, size := range []int{16 << 10, 64 << 10, 1 << 20} {
			b.Run(fmt.Sprintf("fsync=%v/size=%dKiB", fsync, size>>10), func(b *testing.B) {
				refAddr, refDir := startRefServer(b, benchDir(b), fsync)
				recvAddr, recvDir := startFramerecv(b, benchDir(b), fsync)
				ref := newBenchClient(b, size, refAddr, refDir)
				recv := newBenchClient(b, size, recvAddr, recvDir)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				// Alternate batches of 64 frames, so that both see the
				// same load on a shared machine; b.N counts all frames.
				cur, other := ref, recv
				for b.Loop() {
					if cur.frame() {
						cur, other = other, cur
					}
				}
				b.StopTimer()
				rf, ff := ref.rate(), recv.rate()
				b.ReportMetric(rf, "ref-frames/s")
				b.ReportMetric(ff, "frames/s")
				b.ReportMetric(ff/rf, "x-reference")
				b.ReportMetric(ref.cpuPerFrame(), "ref-cpu-µs/frame")
				b.ReportMetric(recv.cpuPerFrame(), "cpu-µs/frame")
			})
		}
	}
}

// benchClient is the minimal stop-and-wait client: terminated SIZE line,
// wait for GOT SIZE, payload, wait for GOT IMAGE. It keeps the wall and
// process CPU time of its own frames, and removes the stored files every
// 128 frames outside the timing.
type benchClient struct {
	b       *testing.B
	dir     string
	c       net.Conn
	line    []byte
	payload []byte
	ans     [16]byte
	n       int

	batchStart time.Time
	cpuStart   time.Duration
	wall       time.Duration
	cpu        time.Duration
	batch      int
}

func newBenchClient(b *testing.B, size int, addr, dir string) *benchClient {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	bc := &benchClient{b: b, dir: dir, c: c, line: []byte("SIZE " + strconv.Itoa(size) + "\n"), payload: make([]byte, size)}
	for i := range bc.payload {
		bc.payload[i] = byte(i * 7)
	}
	copy(bc.payload, "\xFF\xD8\xFF\xE0")
	bc.one() // connect and create the folders outside the timing
	return bc
}

func (bc *benchClient) one() {
	b, c, ans := bc.b, bc.c, bc.ans[:]
	if _, err := c.Write(bc.line); err != nil {
		b.Fatal(err)
	}
	if _, err := io.ReadFull(c, ans[:len(wire.GotSize)]); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Write(bc.payload); err != nil {
		b.Fatal(err)
	}
	if _, err := io.ReadFull(c, ans[:len(wire.GotImage)]); err != nil {
		b.Fatal(err)
	}
	if string(ans[:len(wire.GotImage)]) != wire.GotImage {
		b.Fatalf("answer %q", ans[:len(wire.GotImage)])
	}
}

// frame sends one timed frame, in batches of 64 timed together; it
// reports true when it ended a batch.
func (bc *benchClient) frame() bool {
	if bc.batch == 0 {
		bc.batchStart, bc.cpuStart = time.Now(), processCPU()
	}
	bc.one()
	bc.n++
	if bc.batch++; bc.batch == 64 {
		bc.flush()
		return true
	}
	return false
}

func (bc *benchClient) flush() {
	if bc.batch == 0 {
		return
	}
	bc.wall += time.Since(bc.batchStart)
	bc.cpu += processCPU() - bc.cpuStart
	bc.batch = 0
	if bc.n%128 == 0 {
		bc.b.StopTimer()
		_ = filepath.WalkDir(bc.dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				os.Remove(p)
			}
			return nil
		})
		bc.b.StartTimer()
	}
}

func (bc *benchClient) rate() float64 {
	bc.flush()
	return float64(bc.n) / bc.wall.Seconds()
}

func (bc *benchClient) cpuPerFrame() float64 {
	bc.flush()
	return float64(bc.cpu.Microseconds()) / float64(bc.n)
}

// benchDir is a fresh folder under $FRAMEPUSH_BENCH_DIR (say /dev/shm, a
// tmpfs, to take the disk out of the comparison), else the test's
// temporary folder.
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

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startFramerecv(b *testing.B, dir string, fsync bool) (addr, folder string) {
	s, err := New(Options{Dir: dir, NoFsync: !fsync, MinFreeBytes: 1})
	if err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go s.Serve(l)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return l.Addr().String(), dir
}

// startRefServer is the reference: the same file work as framerecv per
// frame, in the folder framerecv would use, and nothing more.
func startRefServer(b *testing.B, dir string, fsync bool) (addr, folder string) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		folder := filepath.Join(dir, "127.0.0.1", time.Now().UTC().Format("2006-01-02"))
		if err := os.MkdirAll(folder, 0o755); err != nil {
			return
		}
		br := bufio.NewReaderSize(c, 128<<10)
		buf := make([]byte, 128<<10)
		for seq := 0; ; seq++ {
			ln, err := br.ReadString('\n')
			if err != nil {
				return
			}
			n, err := strconv.ParseInt(strings.TrimPrefix(strings.TrimSpace(ln), "SIZE "), 10, 64)
			if err != nil {
				return
			}
			if _, err := io.WriteString(c, wire.GotSize); err != nil {
				return
			}
			f, err := os.CreateTemp(folder, ".tmp-*")
			if err != nil {
				return
			}
			if _, err := io.CopyBuffer(f, io.LimitReader(br, n), buf); err != nil {
				return
			}
			if fsync {
				_ = f.Sync()
			}
			f.Close()
			if err := os.Rename(f.Name(), filepath.Join(folder, fmt.Sprintf("%s-%06d.jpg", time.Now().UTC().Format("20060102T150405.000000000Z"), seq))); err != nil {
				return
			}
			if fsync {
				if d, err := os.Open(folder); err == nil {
					_ = d.Sync()
					d.Close()
				}
			}
			if _, err := io.WriteString(c, wire.GotImage); err != nil {
				return
			}
		}
	}()
	return l.Addr().String(), dir
}
