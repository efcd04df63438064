package sender

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"sync"
	"testing"

	"framepush/receiver"
	"framepush/wire"
)

// startSink runs a server that acknowledges terminated-SIZE frames without
// allocating per frame, so allocation counts in the same process measure
// the sender alone.
func startSink(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				sink(c)
			}()
		}
	}()
	tb.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
}

// sinkBufs keeps one-connection-per-frame benchmarks from counting the
// sink's buffer as the sender's allocation.
var sinkBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

func sink(c net.Conn) {
	bp := sinkBufs.Get().(*[]byte)
	defer sinkBufs.Put(bp)
	buf := *bp
	gotSize, gotImage := []byte(wire.GotSize), []byte(wire.GotImage)
	r, w := 0, 0
	for {
		var line []byte
		for {
			if i := bytes.IndexByte(buf[r:w], '\n'); i >= 0 {
				line = buf[r : r+i]
				r += i + 1
				break
			}
			if r > 0 {
				w = copy(buf, buf[r:w])
				r = 0
			}
			n, err := c.Read(buf[w:])
			if err != nil {
				return
			}
			w += n
		}
		for len(line) > 0 && line[0] == ' ' {
			line = line[1:]
		}
		if len(line) < 6 || line[0] != 'S' {
			return // BYE or garbage
		}
		var size int64
		for _, d := range line[5:] {
			if d < '0' || d > '9' {
				break
			}
			size = size*10 + int64(d-'0')
		}
		if _, err := c.Write(gotSize); err != nil {
			return
		}
		have := min(int64(w-r), size)
		r += int(have)
		for size -= have; size > 0; {
			n, err := c.Read(buf[:min(int64(len(buf)), size)])
			if err != nil {
				return
			}
			size -= int64(n)
		}
		if _, err := c.Write(gotImage); err != nil {
			return
		}
	}
}

// The steady-state persistent path allocates nothing per frame, whatever
// the options: extension tokens, checksums, a cancellable context.
func TestSendPersistentZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	addr := startSink(t)
	cancellable, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, tc := range []struct {
		name string
		o    Options
		ctx  context.Context
	}{
		{"lf", Options{Terminator: wire.TermLF}, context.Background()},
		{"lf cancellable ctx", Options{Terminator: wire.TermLF}, cancellable},
		{"extension sha256", Options{Extension: true, Name: "cam", Checksum: wire.ChecksumSHA256}, cancellable},
		{"extension crc32c", Options{Extension: true, Name: "cam", Checksum: wire.ChecksumCRC32C}, cancellable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.Addresses, o.Mode = []string{addr}, ModePersistent
			s := newSender(t, o)
			f := testFrame(1, 64<<10)
			send(t, s, f) // connect
			var err error
			allocs := testing.AllocsPerRun(200, func() {
				f.Seq++
				if e := s.Send(tc.ctx, f); e != nil {
					err = e
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if allocs != 0 {
				t.Errorf("%v allocations per frame, want 0", allocs)
			}
			if st := s.Stats(); st.Connects != 1 || st.Sent < 200 {
				t.Errorf("Stats = %+v", st)
			}
		})
	}
}

var benchSizes = []int{64 << 10, 1 << 20, 8 << 20}

func sizeName(n int) string {
	if n >= 1<<20 {
		return strconv.Itoa(n>>20) + "MiB"
	}
	return strconv.Itoa(n>>10) + "KiB"
}

func benchSend(b *testing.B, o Options, n int) {
	s, err := New(o)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(context.Background())
	f := testFrame(1, n)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Send(ctx, f); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		f.Seq++
		if err := s.Send(ctx, f); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}

// BenchmarkSendPersistent measures the sender alone against a sink that
// allocates nothing: allocs/op is the sender's, and must be 0.
func BenchmarkSendPersistent(b *testing.B) {
	addr := startSink(b)
	for _, n := range benchSizes {
		b.Run(sizeName(n), func(b *testing.B) {
			benchSend(b, Options{Addresses: []string{addr}, Mode: ModePersistent, Terminator: wire.TermLF}, n)
		})
	}
	b.Run("64KiB-extension-sha256", func(b *testing.B) {
		benchSend(b, Options{Addresses: []string{addr}, Mode: ModePersistent, Extension: true, Name: "cam", Checksum: wire.ChecksumSHA256}, 64<<10)
	})
}

// BenchmarkSendSeed is one connection per frame (the original server's
// way) against the sink: the cost of connecting for every frame.
func BenchmarkSendSeed(b *testing.B) {
	addr := startSink(b)
	benchSend(b, Options{Addresses: []string{addr}, Mode: ModeSeed, Terminator: wire.TermLF}, 64<<10)
}

// BenchmarkSendReceiver is sender plus the reference receiver (fsync off)
// on loopback; allocs/op includes the receiver's, which runs in the same
// process.
func BenchmarkSendReceiver(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(sizeName(n), func(b *testing.B) {
			r := startBenchReceiver(b)
			benchSend(b, Options{Addresses: []string{r}, Mode: ModePersistent, Terminator: wire.TermLF}, n)
		})
	}
}

func startBenchReceiver(b *testing.B) string {
	srv, err := receiver.New(receiver.Options{Dir: b.TempDir(), NoFsync: true, MinFreeBytes: -1})
	if err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(l)
	b.Cleanup(func() { srv.Shutdown(context.Background()) })
	return l.Addr().String()
}
