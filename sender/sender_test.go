package sender

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"framepush/frame"
	"framepush/internal/backoff"
	"framepush/receiver"
	"framepush/wire"
)

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"no address", Options{}, "no server address"},
		{"bad address", Options{Addresses: []string{"localhost"}}, "want HOST:PORT"},
		{"bad port", Options{Addresses: []string{"localhost:99999"}}, "port"},
		{"bad mode", Options{Addresses: []string{"a:1"}, Mode: "fast"}, "unknown mode"},
		{"bad name", Options{Addresses: []string{"a:1"}, Extension: true, Name: "a b"}, "not a valid token"},
		{"negative timeout", Options{Addresses: []string{"a:1"}, AnswerTimeout: -1}, "negative"},
	} {
		if _, err := New(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: New error %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
	s, err := New(Options{Addresses: []string{"127.0.0.1:7400"}, Checksum: wire.ChecksumSHA256, Name: "ignored without extension"})
	if err != nil {
		t.Fatalf("checksum and name without extension must be ignored, got %v", err)
	}
	if st := s.Stats(); st.Mode != ModePersistent || st.Connected || st.Address != "127.0.0.1:7400" {
		t.Errorf("fresh Stats = %+v", st)
	}
}

// The default bytes on the wire are the seed client's, to the byte.
func TestSeedBytesExact(t *testing.T) {
	got := make(chan string, 1)
	srv := startFake(t, func(c net.Conn, _ int) {
		var all bytes.Buffer
		buf := make([]byte, 64)
		// "SIZE 5" carries no terminator: answer once all 6 bytes are in.
		for all.Len() < len("SIZE 5") {
			n, err := c.Read(buf)
			all.Write(buf[:n])
			if err != nil {
				break
			}
		}
		io.WriteString(c, wire.GotSize)
		for all.Len() < len("SIZE 5hello") {
			n, err := c.Read(buf)
			all.Write(buf[:n])
			if err != nil {
				break
			}
		}
		io.WriteString(c, wire.GotImage)
		rest, _ := io.ReadAll(c)
		all.Write(rest)
		got <- all.String()
	})
	s := newSender(t, Options{Addresses: []string{srv.addr}, Mode: ModeSeed})
	send(t, s, frame.Frame{Data: []byte("hello"), Seq: 1, Time: time.Now()})
	if g := <-got; g != "SIZE 5hello"+"BYE BYE " {
		t.Fatalf("client sent %q, want the seed's %q", g, "SIZE 5helloBYE BYE ")
	}
}

func TestPersistentToReceiver(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"seed bytes", Options{}},
		{"lf", Options{Terminator: wire.TermLF}},
		{"extension sha256", Options{Extension: true, Checksum: wire.ChecksumSHA256, Name: "cam-1"}},
		{"extension crc32c crlf", Options{Extension: true, Checksum: wire.ChecksumCRC32C, Terminator: wire.TermCRLF}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startReceiver(t, receiver.Options{})
			o := tc.o
			o.Addresses, o.Mode = []string{r.Addr}, ModePersistent
			s := newSender(t, o)
			sizes := []int{1, 2, 100, 4096, 65536, 1 << 20, 3, 250000}
			var frames []frame.Frame
			for i := range 24 {
				f := testFrame(uint64(i+1), sizes[i%len(sizes)])
				frames = append(frames, f)
				send(t, s, f)
			}
			st := s.Stats()
			if st.Sent != 24 || st.Connects != 1 || st.Failures != 0 || !st.Connected || st.Mode != ModePersistent {
				t.Errorf("Stats = %+v, want 24 sent on 1 connection", st)
			}
			if err := s.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(context.Background()); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			checkStored(t, r, frames)
			for i, st := range r.Frames() {
				m, f := st.Meta, frames[i]
				if !o.Extension {
					if !m.IsZero() {
						t.Fatalf("frame %d carried extension tokens without Extension: %+v", i, m)
					}
					continue
				}
				if m.Name != o.Name || m.ID != strconv.FormatUint(f.Seq, 10) || !m.Time.Equal(f.Time) ||
					m.HasSHA256 != (o.Checksum == wire.ChecksumSHA256) || m.HasCRC32C != (o.Checksum == wire.ChecksumCRC32C) {
					t.Fatalf("frame %d meta = %+v, want name %q id %d ts %v checksum %v", i, m, o.Name, f.Seq, f.Time, o.Checksum)
				}
			}
			waitIdle(t, r)
			if rs := r.Stats(); len(rs.Rejects) != 0 {
				t.Errorf("receiver counted refusals %v", rs.Rejects)
			}
		})
	}
}

// seedServer behaves like the original Python server: one frame per
// connection, then it closes without waiting for BYE BYE.
func seedServer(mu *sync.Mutex, got *[][]byte) func(net.Conn, int) {
	return func(c net.Conn, _ int) {
		dec := wire.NewDecoder(c, 0)
		req, b, err := readFrame(c, dec)
		if err != nil || req.Kind != wire.KindSize {
			return
		}
		mu.Lock()
		*got = append(*got, b)
		mu.Unlock()
		io.WriteString(c, wire.GotImage)
	}
}

func TestAutoSwitchesForSeedServer(t *testing.T) {
	var mu sync.Mutex
	var got [][]byte
	srv := startFake(t, seedServer(&mu, &got))
	s := newSender(t, Options{Addresses: []string{srv.addr}}) // auto by default
	var frames []frame.Frame
	for i := range 6 {
		f := testFrame(uint64(i+1), 1000+i)
		frames = append(frames, f)
		send(t, s, f)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != len(frames) {
		t.Fatalf("server received %d frames, want %d (no loss, no duplicate)", len(got), len(frames))
	}
	for i := range got {
		if !bytes.Equal(got[i], frames[i].Data) {
			t.Fatalf("frame %d differs", i)
		}
	}
	st := s.Stats()
	if st.Failures != 0 || st.Sent != 6 || st.Mode != ModeSeed || st.Connects != 6 || st.Connected {
		t.Errorf("Stats = %+v, want 6 sent, 0 failures, mode seed, 6 connections, none open", st)
	}
	if n := srv.accepted(); n != 6 {
		t.Errorf("server accepted %d connections, want 6", n)
	}
}

func TestSeedModeAgainstSeedServer(t *testing.T) {
	var mu sync.Mutex
	var got [][]byte
	srv := startFake(t, seedServer(&mu, &got))
	s := newSender(t, Options{Addresses: []string{srv.addr}, Mode: ModeSeed, Terminator: wire.TermLF})
	for i := range 4 {
		send(t, s, testFrame(uint64(i+1), 10))
	}
	if st := s.Stats(); st.Failures != 0 || st.Sent != 4 || st.Connects != 4 || st.Reconnects != 0 || st.Mode != ModeSeed {
		t.Errorf("Stats = %+v", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 4 {
		t.Errorf("server received %d frames, want 4", len(got))
	}
}

// Auto stays persistent with a server that keeps the connection, and seed
// mode says BYE BYE to the receiver each time, so it logs no refusal.
func TestModesAgainstReceiver(t *testing.T) {
	for _, mode := range []Mode{ModeAuto, ModeSeed} {
		t.Run(string(mode), func(t *testing.T) {
			r := startReceiver(t, receiver.Options{})
			s := newSender(t, Options{Addresses: []string{r.Addr}, Mode: mode, Terminator: wire.TermLF})
			var frames []frame.Frame
			for i := range 5 {
				f := testFrame(uint64(i+1), 5000)
				frames = append(frames, f)
				send(t, s, f)
			}
			if err := s.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			checkStored(t, r, frames)
			st := s.Stats()
			wantConns, wantMode := uint64(1), ModePersistent
			if mode == ModeSeed {
				wantConns, wantMode = 5, ModeSeed
			}
			if st.Connects != wantConns || st.Mode != wantMode || st.Failures != 0 {
				t.Errorf("Stats = %+v, want %d connections in mode %s", st, wantConns, wantMode)
			}
			waitIdle(t, r)
			if rs := r.Stats(); len(rs.Rejects) != 0 || rs.Conns != wantConns {
				t.Errorf("receiver stats %+v, want %d clean connections", rs, wantConns)
			}
		})
	}
}

// A server that closes a persistent connection between frames (idle
// timeout, restart) costs a reconnect, not a failure, and no switch to
// seed mode when the connection had carried several frames.
func TestStaleConnectionResent(t *testing.T) {
	var mu sync.Mutex
	var got [][]byte
	srv := startFake(t, func(c net.Conn, _ int) {
		dec := wire.NewDecoder(c, 0)
		for range 2 {
			_, b, err := readFrame(c, dec)
			if err != nil {
				return
			}
			mu.Lock()
			got = append(got, b)
			mu.Unlock()
			io.WriteString(c, wire.GotImage)
		}
	})
	for _, mode := range []Mode{ModeAuto, ModePersistent} {
		mu.Lock()
		got = nil
		mu.Unlock()
		s := newSender(t, Options{Addresses: []string{srv.addr}, Mode: mode, Terminator: wire.TermLF})
		for i := range 7 {
			send(t, s, testFrame(uint64(i+1), 300))
		}
		st := s.Stats()
		if st.Failures != 0 || st.Sent != 7 || st.Mode != ModePersistent || st.Connects != 4 || st.Reconnects != 3 {
			t.Errorf("%s: Stats = %+v, want 7 sent on 4 connections, still persistent", mode, st)
		}
		mu.Lock()
		if len(got) != 7 {
			t.Errorf("%s: server received %d frames, want 7", mode, len(got))
		}
		mu.Unlock()
	}
}

func TestSilentServer(t *testing.T) {
	srv := startFake(t, func(c net.Conn, _ int) { io.Copy(io.Discard, c) })
	s := newSender(t, Options{Addresses: []string{srv.addr}, AnswerTimeout: 200 * time.Millisecond})
	err := sendErr(t, s, testFrame(1, 10))
	if !errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "no GOT SIZE within 200ms") || IsPermanent(err) {
		t.Fatalf("error %v, want a transient timeout waiting for GOT SIZE", err)
	}
	if st := s.Stats(); st.Failures != 1 || st.Connected || st.LastError != err.Error() || st.RetryDelay > backoff.Default.Initial {
		t.Errorf("Stats = %+v", st)
	}
}

func TestSilentAfterPayload(t *testing.T) {
	srv := startFake(t, func(c net.Conn, _ int) {
		dec := wire.NewDecoder(c, 0)
		if _, _, err := readFrame(c, dec); err == nil {
			io.Copy(io.Discard, c)
		}
	})
	s := newSender(t, Options{Addresses: []string{srv.addr}, AnswerTimeout: 200 * time.Millisecond})
	err := sendErr(t, s, testFrame(1, 10))
	if !errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "no GOT IMAGE within 200ms") {
		t.Fatalf("error %v, want a timeout waiting for GOT IMAGE", err)
	}
}

// smallBuffers dials with a small send buffer so that a server that stops
// reading blocks the writer quickly.
func smallBuffers(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err == nil {
		_ = c.(*net.TCPConn).SetWriteBuffer(4096)
	}
	return c, err
}

// stallingServer answers GOT SIZE and then never reads.
func stallingServer(t *testing.T) *fakeServer {
	stop := make(chan struct{})
	srv := startFake(t, func(c net.Conn, _ int) {
		_ = c.(*net.TCPConn).SetReadBuffer(4096)
		dec := wire.NewDecoder(c, 0)
		if _, err := dec.ReadRequest(time.Now().Add(long)); err != nil {
			return
		}
		io.WriteString(c, wire.GotSize)
		<-stop
	})
	t.Cleanup(func() { close(stop) })
	return srv
}

func TestStalledReaderHitsWriteDeadline(t *testing.T) {
	srv := stallingServer(t)
	s := newSender(t, Options{Addresses: []string{srv.addr}, AnswerTimeout: 200 * time.Millisecond,
		MinThroughput: 1 << 40, Dial: smallBuffers, Terminator: wire.TermLF})
	err := sendErr(t, s, testFrame(1, 16<<20))
	if !errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "payload of 16777216 bytes not written within") {
		t.Fatalf("error %v, want the data-write deadline", err)
	}
}

func TestDataTimeout(t *testing.T) {
	o := Options{AnswerTimeout: time.Second, MinThroughput: 1 << 20}
	if d := o.dataTimeout(3 << 19); d != 2500*time.Millisecond {
		t.Errorf("dataTimeout(1.5 MiB at 1 MiB/s) = %v, want 2.5s", d)
	}
	if d := o.dataTimeout(1 << 62); d != time.Second+24*time.Hour {
		t.Errorf("dataTimeout(huge) = %v, want capped", d)
	}
}

func TestGarbageAnswer(t *testing.T) {
	srv := startFake(t, func(c net.Conn, _ int) {
		dec := wire.NewDecoder(c, 0)
		if _, err := dec.ReadRequest(time.Now().Add(long)); err == nil {
			io.WriteString(c, "HTTP/1.1 400 Bad Request\r\n\r\n")
		}
		io.Copy(io.Discard, c)
	})
	s := newSender(t, Options{Addresses: []string{srv.addr}, Terminator: wire.TermLF})
	err := sendErr(t, s, testFrame(1, 10))
	var pe *wire.ProtocolError
	if !errors.As(err, &pe) || IsPermanent(err) ||
		!strings.Contains(err.Error(), `unexpected answer (want "GOT SIZE"): "HTTP/1.1 400 Bad Request`) {
		t.Fatalf("error %v, want a protocol error quoting the bytes", err)
	}
}

func TestTooLargeIsPermanent(t *testing.T) {
	r := startReceiver(t, receiver.Options{MaxFrameSize: 1000})
	s := newSender(t, Options{Addresses: []string{r.Addr}, Terminator: wire.TermLF})
	err := sendErr(t, s, testFrame(1, 2000))
	var rej *wire.RejectError
	if !IsPermanent(err) || !errors.As(err, &rej) || rej.Reason != wire.ReasonTooLarge || rej.Detail != "max=1000" {
		t.Fatalf("error %v, want a permanent too-large refusal", err)
	}
	if st := s.Stats(); st.Rejected != 1 || st.Failures != 0 || st.RetryDelay != 0 {
		t.Errorf("Stats = %+v, want 1 rejected, no failure, no backoff", st)
	}
	send(t, s, testFrame(2, 1000))
	if err := sendErr(t, s, frame.Frame{Seq: 3}); !IsPermanent(err) || !errors.Is(err, ErrEmptyFrame) {
		t.Fatalf("empty frame: %v", err)
	}
}

func TestTransientRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, answer string
		afterData    bool
		reason       string
	}{
		{"disk-full", "ERR disk-full free=0\n", false, wire.ReasonDiskFull},
		{"busy", "ERR busy max=1\n", false, wire.ReasonBusy},
		{"checksum", "ERR checksum sha256 mismatch\n", true, wire.ReasonChecksum},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startFake(t, func(c net.Conn, _ int) {
				dec := wire.NewDecoder(c, 0)
				if tc.afterData {
					if _, _, err := readFrame(c, dec); err != nil {
						return
					}
				} else if _, err := dec.ReadRequest(time.Now().Add(long)); err != nil {
					return
				}
				io.WriteString(c, tc.answer)
			})
			s := newSender(t, Options{Addresses: []string{srv.addr}, Terminator: wire.TermLF})
			err := sendErr(t, s, testFrame(1, 10))
			var rej *wire.RejectError
			if IsPermanent(err) || !errors.As(err, &rej) || rej.Reason != tc.reason {
				t.Fatalf("error %v, want a transient %s refusal", err, tc.reason)
			}
			if st := s.Stats(); st.Failures != 1 || st.Rejected != 0 {
				t.Errorf("Stats = %+v", st)
			}
		})
	}
}

// Answers may arrive in any pieces: byte by byte, with CRLF, with the tail
// of one answer glued to the next.
func TestAnswerSegmentation(t *testing.T) {
	dribble := func(c net.Conn, s string) {
		for i := range len(s) {
			c.Write([]byte{s[i]})
			time.Sleep(time.Millisecond)
		}
	}
	srv := startFake(t, func(c net.Conn, i int) {
		dec := wire.NewDecoder(c, 0)
		for k := 0; ; k++ {
			req, err := dec.ReadRequest(time.Now().Add(long))
			if err != nil || req.Kind != wire.KindSize {
				return
			}
			switch k % 3 {
			case 0:
				dribble(c, "GOT SIZE\r\n")
			case 1:
				io.WriteString(c, "GOT SIZE") // its CRLF comes glued to GOT IMAGE
			case 2:
				dribble(c, " GOT SIZE")
			}
			b := make([]byte, req.Size)
			if _, err := io.ReadFull(dec, b); err != nil {
				return
			}
			switch k % 3 {
			case 0:
				dribble(c, "GOT IMAGE \r\n")
			case 1:
				io.WriteString(c, "\r\nGOT IMAGE\r\n")
			case 2:
				dribble(c, "GOT IMAGE")
			}
			if k == 5 {
				dribble(c, "ERR too-large max=5\n")
				return
			}
		}
	})
	s := newSender(t, Options{Addresses: []string{srv.addr}, Terminator: wire.TermLF})
	for i := range 6 {
		send(t, s, testFrame(uint64(i+1), 20))
	}
	err := sendErr(t, s, testFrame(7, 20))
	if !IsPermanent(err) || !strings.Contains(err.Error(), "too-large: max=5") {
		t.Fatalf("error %v, want the dribbled permanent refusal", err)
	}
	if st := s.Stats(); st.Connects != 1 || st.Sent != 6 {
		t.Errorf("Stats = %+v, want 6 frames on one connection", st)
	}
}

// A server that talks out of turn after GOT IMAGE has its frame counted as
// delivered, but its connection is not trusted with another.
func TestBytesAfterGotImage(t *testing.T) {
	srv := startFake(t, func(c net.Conn, _ int) {
		dec := wire.NewDecoder(c, 0)
		for {
			if _, _, err := readFrame(c, dec); err != nil {
				return
			}
			io.WriteString(c, "GOT IMAGEGOT IMAGE")
		}
	})
	s := newSender(t, Options{Addresses: []string{srv.addr}, Terminator: wire.TermLF})
	send(t, s, testFrame(1, 20))
	send(t, s, testFrame(2, 20))
	if st := s.Stats(); st.Connects != 2 || st.Sent != 2 || st.Failures != 0 {
		t.Errorf("Stats = %+v, want 2 frames on 2 connections", st)
	}
}

func TestFailover(t *testing.T) {
	r := startReceiver(t, receiver.Options{})
	s := newSender(t, Options{Addresses: []string{refusedAddr(t), r.Addr}, Terminator: wire.TermLF})
	send(t, s, testFrame(1, 100))
	send(t, s, testFrame(2, 100))
	if st := s.Stats(); st.Address != r.Addr || st.Failures != 0 || st.Connects != 1 {
		t.Errorf("Stats = %+v, want both frames on the second address", st)
	}
	if len(r.Frames()) != 2 {
		t.Errorf("receiver stored %d frames", len(r.Frames()))
	}
}

// A server that accepts connections but refuses frames sends the next
// attempt to the next address.
func TestFailoverAfterRefusal(t *testing.T) {
	busy := startFake(t, func(c net.Conn, _ int) { io.WriteString(c, "ERR busy max=0\n") })
	r := startReceiver(t, receiver.Options{})
	s := newSender(t, Options{Addresses: []string{busy.addr, r.Addr}, Terminator: wire.TermLF,
		Backoff: backoff.Policy{Initial: time.Millisecond, Max: time.Millisecond, Multiplier: 1}})
	err := sendErr(t, s, testFrame(1, 100))
	if !strings.Contains(err.Error(), "busy") {
		t.Fatalf("error %v, want busy", err)
	}
	send(t, s, testFrame(1, 100))
	if st := s.Stats(); st.Address != r.Addr || st.Failures != 1 || st.Sent != 1 {
		t.Errorf("Stats = %+v", st)
	}
}

// flakyDialer fails while fail is set and records when it was called.
type flakyDialer struct {
	mu    sync.Mutex
	fail  bool
	times []time.Time
}

func (d *flakyDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.times = append(d.times, time.Now())
	fail := d.fail
	d.mu.Unlock()
	if fail {
		return nil, errors.New("injected dial failure")
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, addr)
}

func (d *flakyDialer) set(fail bool) {
	d.mu.Lock()
	d.fail = fail
	d.mu.Unlock()
}

func TestBackoffBetweenFailures(t *testing.T) {
	r := startReceiver(t, receiver.Options{})
	d := &flakyDialer{fail: true}
	s := newSender(t, Options{Addresses: []string{r.Addr}, Dial: d.dial, Terminator: wire.TermLF,
		Backoff: backoff.Policy{Initial: 20 * time.Millisecond, Max: 80 * time.Millisecond, Multiplier: 2}})
	s.bo.Rand = func() float64 { return 1 } // delays at their bound: no jitter to reason about
	want := []time.Duration{20, 40, 80, 80}
	for i, w := range want {
		sendErr(t, s, testFrame(1, 10))
		if got := s.Stats().RetryDelay; got != w*time.Millisecond {
			t.Fatalf("after failure %d RetryDelay = %v, want %v", i+1, got, w*time.Millisecond)
		}
	}
	d.set(false)
	send(t, s, testFrame(1, 10))
	d.mu.Lock()
	times := d.times
	d.mu.Unlock()
	if len(times) != 5 {
		t.Fatalf("%d dials, want 5", len(times))
	}
	// Each dial came no earlier than the delay owed by the failure before.
	for i, w := range want {
		if gap := times[i+1].Sub(times[i]); gap < w*time.Millisecond {
			t.Errorf("dial %d came %v after the previous one, want at least %v", i+2, gap, w*time.Millisecond)
		}
	}
	if st := s.Stats(); st.RetryDelay != 0 || st.Failures != 4 || st.Sent != 1 || st.LastError != "" {
		t.Errorf("after a success Stats = %+v, want backoff reset", st)
	}
	// The schedule restarts after a success.
	s.Close(context.Background())
	d.set(true)
	sendErr(t, s, testFrame(2, 10))
	if got := s.Stats().RetryDelay; got != 20*time.Millisecond {
		t.Errorf("first failure after a success owes %v, want the initial 20ms", got)
	}
}

func TestConnectTimeout(t *testing.T) {
	hang := func(ctx context.Context, _, _ string) (net.Conn, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	s := newSender(t, Options{Addresses: []string{"192.0.2.1:7400"}, Dial: hang, ConnectTimeout: 100 * time.Millisecond})
	err := sendErr(t, s, testFrame(1, 10))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "cannot connect") {
		t.Fatalf("error %v, want a connect timeout", err)
	}
	if s.Stats().Failures != 1 {
		t.Errorf("Stats = %+v", s.Stats())
	}
}

// Cancelling the context interrupts every blocking step at once.
func TestCancelUnblocks(t *testing.T) {
	silent := startFake(t, func(c net.Conn, _ int) { io.Copy(io.Discard, c) })
	stalled := stallingServer(t)
	hang := func(ctx context.Context, _, _ string) (net.Conn, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	for _, tc := range []struct {
		name string
		o    Options
		prep func(*Sender)
		n    int
	}{
		{"answer", Options{Addresses: []string{silent.addr}}, nil, 10},
		{"data", Options{Addresses: []string{stalled.addr}, Dial: smallBuffers, MinThroughput: 1}, nil, 16 << 20},
		{"connect", Options{Addresses: []string{"192.0.2.1:7400"}, Dial: hang, ConnectTimeout: time.Hour}, nil, 10},
		{"backoff", Options{Addresses: []string{refusedAddr(t)}, Backoff: backoff.Policy{Initial: time.Hour, Max: time.Hour, Multiplier: 1}},
			func(s *Sender) {
				s.bo.Rand = func() float64 { return 1 }
				sendErr(t, s, testFrame(1, 10))
			}, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.AnswerTimeout, o.Terminator = time.Hour, wire.TermLF
			s := newSender(t, o)
			if tc.prep != nil {
				tc.prep(s)
			}
			failures := s.Stats().Failures
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(50*time.Millisecond, cancel)
			start := time.Now()
			err := s.Send(ctx, testFrame(2, tc.n))
			if took := time.Since(start); took > long/3 {
				t.Errorf("Send took %v after cancel", took)
			}
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("error %v, want context.Canceled", err)
			}
			if st := s.Stats(); st.Failures != failures || st.Connected {
				t.Errorf("Stats = %+v: a cancellation is no failure and leaves no connection", st)
			}
		})
	}
}

func TestCloseSendsBye(t *testing.T) {
	rest := make(chan string, 1)
	srv := startFake(t, func(c net.Conn, _ int) {
		dec := wire.NewDecoder(c, 0)
		if _, _, err := readFrame(c, dec); err != nil {
			rest <- "error: " + err.Error()
			return
		}
		io.WriteString(c, wire.GotImage)
		tail, _ := io.ReadAll(c)
		rest <- string(dec.Rest()) + string(tail)
	})
	s := newSender(t, Options{Addresses: []string{srv.addr}, Mode: ModePersistent})
	send(t, s, testFrame(1, 10))
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := <-rest; got != "BYE BYE " {
		t.Fatalf("after the frame the server read %q, want exactly %q", got, "BYE BYE ")
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if st := s.Stats(); st.Connected {
		t.Errorf("Stats = %+v after Close", st)
	}
}

func TestDeliverRetriesUntilDelivered(t *testing.T) {
	r := startReceiver(t, receiver.Options{})
	d := &flakyDialer{fail: true}
	s := newSender(t, Options{Addresses: []string{r.Addr}, Dial: d.dial, Terminator: wire.TermLF,
		Backoff: backoff.Policy{Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond, Multiplier: 2}})
	// Let the dialer recover after a few failures.
	go func() {
		for {
			d.mu.Lock()
			n := len(d.times)
			d.mu.Unlock()
			if n >= 3 {
				d.set(false)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), long)
	defer cancel()
	if err := s.Deliver(ctx, testFrame(1, 100)); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Sent != 1 || st.Failures < 2 {
		t.Errorf("Stats = %+v", st)
	}
	// Giving up names the last failure.
	s.Close(context.Background())
	d.set(true)
	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := s.Deliver(ctx, testFrame(2, 100))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "injected dial failure") {
		t.Fatalf("Deliver error %v, want the deadline and the last failure", err)
	}
}

func TestStatsConcurrent(t *testing.T) {
	r := startReceiver(t, receiver.Options{})
	s := newSender(t, Options{Addresses: []string{r.Addr}, Terminator: wire.TermLF})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 20 {
			send(t, s, testFrame(1, 1000))
		}
	}()
	for {
		select {
		case <-done:
			if s.Stats().Sent != 20 {
				t.Fatalf("Stats = %+v", s.Stats())
			}
			return
		default:
			_ = s.Stats()
		}
	}
}

// Auto mode tries a persistent connection again after a while: against a
// real seed server that costs a reconnect, never a failure or a duplicate.
func TestAutoRechecksPersistent(t *testing.T) {
	var mu sync.Mutex
	var got [][]byte
	srv := startFake(t, seedServer(&mu, &got))
	s := newSender(t, Options{Addresses: []string{srv.addr}, Terminator: wire.TermLF})
	s.recheck = 0 // every new connection tries persistent first
	for i := range 6 {
		send(t, s, testFrame(uint64(i+1), 500))
	}
	mu.Lock()
	defer mu.Unlock()
	if st := s.Stats(); len(got) != 6 || st.Failures != 0 || st.Sent != 6 {
		t.Errorf("server got %d frames, Stats = %+v; want 6 frames, no failure", len(got), st)
	}
}
