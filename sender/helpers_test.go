package sender

import (
	"context"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"framepush/frame"
	"framepush/internal/testutil"
	"framepush/internal/testutil/recvtest"
	"framepush/receiver"
	"framepush/wire"
)

// long bounds anything a test waits for: generous, so a loaded CI machine
// under -race never fails a test for being slow.
const long = 30 * time.Second

// testFrame returns frame seq with n deterministic bytes.
func testFrame(seq uint64, n int) frame.Frame {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(seq) + byte(i*7) + byte(i>>9)
	}
	if n >= 4 {
		copy(b, "\xFF\xD8\xFF\xE0")
	}
	return frame.Frame{Data: b, Format: "jpeg", Seq: seq, Time: time.Unix(1732425600, int64(seq)), Source: "test"}
}

// startReceiver runs the reference receiver on a loopback port until the
// end of the test.
func startReceiver(t *testing.T, opt receiver.Options) *recvtest.Receiver {
	t.Helper()
	return recvtest.Start(t, "127.0.0.1:0", opt)
}

// checkStored asserts that the receiver stored exactly frames, in order,
// byte for byte.
func checkStored(t *testing.T, r *recvtest.Receiver, frames []frame.Frame) {
	t.Helper()
	got := r.Frames()
	if len(got) != len(frames) {
		t.Fatalf("receiver stored %d frames, want %d", len(got), len(frames))
	}
	for i, st := range got {
		b, err := os.ReadFile(st.Path)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != string(frames[i].Data) {
			t.Fatalf("frame %d: file %s holds %d bytes that differ from the %d sent", i, st.Path, len(b), len(frames[i].Data))
		}
	}
}

// fakeServer is a hand-rolled server whose behaviour each test scripts.
type fakeServer struct {
	addr  string
	l     net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
	n     int
}

// startFake serves each connection with handle (index i counts
// connections from 0) until the end of the test.
func startFake(t *testing.T, handle func(c net.Conn, i int)) *fakeServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{addr: l.Addr().String(), l: l}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.SetDeadline(time.Now().Add(2 * long))
			f.mu.Lock()
			i := f.n
			f.n++
			f.conns = append(f.conns, c)
			f.mu.Unlock()
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				defer c.Close()
				handle(c, i)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		f.mu.Lock()
		for _, c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	return f
}

func (f *fakeServer) accepted() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// readFrame reads one SIZE request and, after answering GOT SIZE, its
// payload. It returns io.EOF at a clean end and the Bye kind for BYE.
func readFrame(c net.Conn, dec *wire.Decoder) (wire.Request, []byte, error) {
	req, err := dec.ReadRequest(time.Now().Add(long))
	if err != nil || req.Kind != wire.KindSize {
		return req, nil, err
	}
	if _, err := io.WriteString(c, wire.GotSize); err != nil {
		return req, nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(long)) // the Decoder leaves its settle deadline
	b := make([]byte, req.Size)
	_, err = io.ReadFull(dec, b)
	return req, b, err
}

// refusedAddr returns a loopback address nothing listens on.
func refusedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().String()
	l.Close()
	return a
}

func newSender(t *testing.T, o Options) *Sender {
	t.Helper()
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func send(t *testing.T, s *Sender, f frame.Frame) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), long)
	defer cancel()
	if err := s.Send(ctx, f); err != nil {
		t.Fatalf("Send frame %d: %v", f.Seq, err)
	}
}

// sendErr sends f and returns the error, failing the test when there is
// none.
func sendErr(t *testing.T, s *Sender, f frame.Frame) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), long)
	defer cancel()
	err := s.Send(ctx, f)
	if err == nil {
		t.Fatalf("Send frame %d succeeded, want an error", f.Seq)
	}
	if ctx.Err() != nil {
		t.Fatalf("Send frame %d hit the test's own deadline: %v", f.Seq, err)
	}
	return err
}

// waitIdle waits until the receiver has no connection open, so that its
// counters include how every connection ended.
func waitIdle(t *testing.T, r *recvtest.Receiver) {
	t.Helper()
	testutil.WaitFor(t, "the receiver to close every connection", long, func() bool { return r.Stats().ActiveConns == 0 })
}
