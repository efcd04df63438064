package sender

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"framepush/frame"
	"framepush/internal/backoff"
	"framepush/internal/testutil"
	"framepush/internal/testutil/recvtest"
	"framepush/receiver"
	"framepush/wire"
)

// submitAll submits frames in order and flushes; it returns the outcomes
// in the order they were reported.
func submitAll(t *testing.T, s *Sender, frames []frame.Frame) []Outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), long)
	defer cancel()
	var out []Outcome
	done := func(o Outcome) { out = append(out, o) }
	for i := range frames {
		s.Submit(ctx, frames[i], i, done)
	}
	s.Flush(ctx, done)
	if len(out) != len(frames) {
		t.Fatalf("%d outcomes for %d frames", len(out), len(frames))
	}
	for i, o := range out {
		if o.Tag.(int) != i {
			t.Fatalf("outcome %d is for frame %d: outcomes out of order", i, o.Tag.(int))
		}
	}
	return out
}

// With framerecv the window is negotiated: every frame is delivered in
// order, on one connection, and the connection reports the window.
func TestWindowWithFramerecv(t *testing.T) {
	for _, ext := range []bool{false, true} {
		t.Run(fmt.Sprintf("extension=%v", ext), func(t *testing.T) {
			r := startReceiver(t, receiver.Options{})
			s := newSender(t, Options{Addresses: []string{r.Addr}, Window: Window{Frames: 8}, Extension: ext, Name: "cam"})
			var frames []frame.Frame
			for i := range 40 {
				frames = append(frames, testFrame(uint64(i+1), 1000+i*997))
			}
			for i, o := range submitAll(t, s, frames) {
				if o.Err != nil {
					t.Fatalf("frame %d: %v", i, o.Err)
				}
			}
			checkStored(t, r, frames)
			st := s.Stats()
			if st.Window != 8 || st.Connects != 1 || st.Sent != 40 || st.Failures != 0 {
				t.Errorf("stats %+v: want window 8, 1 connection, 40 sent, no failure", st)
			}
		})
	}
}

// windowServer is a scripted receiver speaking the extension: it grants
// the window, then reads `read` frames without answering any, proving the
// sender does not wait, and answers them with answers[i] ("" GOT IMAGE,
// else the ERR line), closing after the first ERR.
func windowServer(t *testing.T, read int, answers func(i int) string) *fakeServer {
	return startFake(t, func(c net.Conn, conn int) {
		dec := wire.NewDecoder(c, time.Second)
		var reqs []wire.Request
		for i := range read {
			req, err := dec.ReadRequest(time.Now().Add(long))
			if err != nil {
				return
			}
			if i == 0 {
				if req.Meta.Window == 0 {
					t.Errorf("connection %d: first SIZE line asked for no window", conn)
				}
				if _, err := c.Write(append(wire.AppendWindowAck(nil, req.Meta.Window), wire.GotSize...)); err != nil {
					return
				}
			}
			if !req.Terminated {
				t.Errorf("frame %d inside the window had an unterminated SIZE line", i)
			}
			_ = c.SetReadDeadline(time.Now().Add(long))
			if _, err := io.CopyN(io.Discard, dec, req.Size); err != nil {
				return
			}
			reqs = append(reqs, req)
		}
		for i := range reqs {
			a := answers(i)
			if i > 0 && !strings.HasPrefix(a, "ERR too-large") {
				a = wire.GotSize + a
			}
			if a == "" || a == wire.GotSize {
				a += wire.GotImage
			}
			if _, err := io.WriteString(c, a); err != nil || strings.Contains(a, "ERR") {
				return
			}
		}
		_, _ = io.Copy(io.Discard, c) // BYE, then the sender closes
	})
}

// A refusal inside the window affects only the refused frame: the ones
// before it are delivered, the ones behind it are unanswered (not failed,
// not refused) and are sent again.
func TestWindowRefusalOfOneFrame(t *testing.T) {
	for _, tc := range []struct {
		answer    string
		permanent bool
	}{
		{"ERR checksum sha256 mismatch\n", false},
		{"ERR too-large max=10\n", true},
	} {
		t.Run(tc.answer[:len(tc.answer)-1], func(t *testing.T) {
			f := windowServer(t, 5, func(i int) string {
				if i == 2 {
					return tc.answer
				}
				return ""
			})
			s := newSender(t, Options{Addresses: []string{f.addr}, Window: Window{Frames: 8}, Backoff: quick})
			var frames []frame.Frame
			for i := range 5 {
				frames = append(frames, testFrame(uint64(i+1), 3000))
			}
			out := submitAll(t, s, frames)
			for i, o := range out {
				switch {
				case i < 2 && o.Err != nil:
					t.Errorf("frame %d before the refused one: %v", i, o.Err)
				case i == 2:
					var rej *wire.RejectError
					if !errors.As(o.Err, &rej) || IsPermanent(o.Err) != tc.permanent {
						t.Errorf("refused frame: %v (permanent %v), want the receiver's refusal, permanent=%v", o.Err, IsPermanent(o.Err), tc.permanent)
					}
				case i > 2 && !IsUnanswered(o.Err):
					t.Errorf("frame %d behind the refused one: %v, want ErrUnanswered", i, o.Err)
				}
			}
			st := s.Stats()
			if st.Sent != 2 {
				t.Errorf("sent %d, want 2", st.Sent)
			}
			if tc.permanent && (st.Rejected != 1 || st.Failures != 0) {
				t.Errorf("stats %+v: want 1 rejected, no failure", st)
			}
			if !tc.permanent && st.Failures != 1 {
				t.Errorf("stats %+v: want exactly one failure (the refused frame), not one per unanswered frame", st)
			}
		})
	}
}

// A receiver that ignores the token gets the seed's bytes: after the
// asking line, "SIZE <n>" unterminated, and never a byte before its
// answer; later connections to it do not ask again.
func TestWindowIgnoredIsStopAndWait(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	early := 0
	f := startFake(t, func(c net.Conn, _ int) {
		for {
			buf := make([]byte, 1024)
			_ = c.SetReadDeadline(time.Now().Add(long))
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			line := string(buf[:n])
			if strings.HasPrefix(line, "BYE") {
				return
			}
			mu.Lock()
			lines = append(lines, line)
			mu.Unlock()
			var size int
			if _, err := fmt.Sscanf(strings.Fields(line)[1], "%d", &size); err != nil {
				t.Errorf("SIZE line %q", line)
				return
			}
			_, _ = io.WriteString(c, wire.GotSize)
			data := make([]byte, size)
			if _, err := io.ReadFull(c, data); err != nil {
				return
			}
			// A stop-and-wait sender sends nothing more before GOT IMAGE.
			_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if n, _ := c.Read(buf); n > 0 {
				mu.Lock()
				early++
				mu.Unlock()
			}
			_, _ = io.WriteString(c, wire.GotImage)
		}
	})
	s := newSender(t, Options{Addresses: []string{f.addr}, Window: Window{Frames: 8}})
	var frames []frame.Frame
	for i := range 4 {
		frames = append(frames, testFrame(uint64(i+1), 2000+i))
	}
	for i, o := range submitAll(t, s, frames) {
		if o.Err != nil {
			t.Fatalf("frame %d: %v", i, o.Err)
		}
	}
	s.Close(context.Background())
	for i, o := range submitAll(t, s, frames[:1]) { // a new connection
		if o.Err != nil {
			t.Fatalf("frame %d: %v", i, o.Err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"SIZE 2000 window=8\n", "SIZE 2001", "SIZE 2002", "SIZE 2003", "SIZE 2000"}
	if fmt.Sprint(lines) != fmt.Sprint(want) {
		t.Errorf("SIZE lines %q, want %q", lines, want)
	}
	if early != 0 {
		t.Errorf("%d times the sender sent bytes before GOT IMAGE", early)
	}
	if st := s.Stats(); st.Window != 0 || st.Failures != 0 {
		t.Errorf("stats %+v: want no window, no failure", st)
	}
}

// A receiver that chokes on the token (refuses the line as a bad size,
// or hangs up) gets the frame again at once, without it: delivered, no
// failure, nothing dropped, and the next connection does not ask.
func TestWindowTokenRefusedRetriedWithout(t *testing.T) {
	for _, hangUp := range []bool{false, true} {
		t.Run(fmt.Sprintf("hang-up=%v", hangUp), func(t *testing.T) {
			var mu sync.Mutex
			asked := 0
			f := startFake(t, func(c net.Conn, _ int) {
				dec := wire.NewDecoder(c, 50*time.Millisecond)
				for {
					req, err := dec.ReadRequest(time.Now().Add(long))
					if err != nil || req.Kind != wire.KindSize {
						return
					}
					if req.Meta.Window > 0 {
						mu.Lock()
						asked++
						mu.Unlock()
						if !hangUp {
							_, _ = c.Write(wire.AppendError(nil, wire.ReasonBadSize, "SIZE is not a number"))
						}
						return
					}
					_, _ = io.WriteString(c, wire.GotSize)
					_ = c.SetReadDeadline(time.Now().Add(long))
					if _, err := io.CopyN(io.Discard, dec, req.Size); err != nil {
						return
					}
					_, _ = io.WriteString(c, wire.GotImage)
				}
			})
			s := newSender(t, Options{Addresses: []string{f.addr}, Window: Window{Frames: 8}})
			out := submitAll(t, s, []frame.Frame{testFrame(1, 100)})
			if out[0].Err != nil {
				t.Fatalf("frame refused for its window token was not retried without it: %v", out[0].Err)
			}
			s.Close(context.Background())
			if out := submitAll(t, s, []frame.Frame{testFrame(2, 100)}); out[0].Err != nil {
				t.Fatal(out[0].Err)
			}
			if st := s.Stats(); st.Rejected != 0 || st.Sent != 2 || st.Failures != 0 {
				t.Errorf("stats %+v: want 2 sent, nothing rejected or failed", st)
			}
			mu.Lock()
			defer mu.Unlock()
			if asked != 1 {
				t.Errorf("asked for a window %d times, want once", asked)
			}
		})
	}
}

// A connection that breaks mid-window: the answered frames count, the
// oldest unanswered one carries the failure (counted once), the rest are
// unanswered.
func TestWindowBrokenConnectionResends(t *testing.T) {
	g := startFake(t, func(c net.Conn, _ int) {
		dec := wire.NewDecoder(c, time.Second)
		for i := range 3 {
			req, err := dec.ReadRequest(time.Now().Add(long))
			if err != nil {
				return
			}
			if i == 0 {
				_, _ = c.Write(append(wire.AppendWindowAck(nil, 8), wire.GotSize...))
			}
			_ = c.SetReadDeadline(time.Now().Add(long))
			if _, err := io.CopyN(io.Discard, dec, req.Size); err != nil {
				return
			}
		}
		_, _ = io.WriteString(c, wire.GotImage+wire.GotSize) // frame 0 answered, frame 1 accepted, then gone
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
	})
	s := newSender(t, Options{Addresses: []string{g.addr}, Window: Window{Frames: 8}, Backoff: quick})
	var frames []frame.Frame
	for i := range 3 {
		frames = append(frames, testFrame(uint64(i+1), 5000))
	}
	out := submitAll(t, s, frames)
	if out[0].Err != nil {
		t.Errorf("answered frame: %v", out[0].Err)
	}
	if out[1].Err == nil || IsUnanswered(out[1].Err) || IsPermanent(out[1].Err) {
		t.Errorf("oldest unanswered frame: %v, want the connection's failure", out[1].Err)
	}
	if !IsUnanswered(out[2].Err) {
		t.Errorf("frame behind it: %v, want ErrUnanswered", out[2].Err)
	}
	if st := s.Stats(); st.Failures != 1 || st.Sent != 1 {
		t.Errorf("stats %+v: want 1 sent, 1 failure", st)
	}
}

var quick = backoff.Policy{Initial: time.Millisecond, Max: 10 * time.Millisecond, Multiplier: 2}

// The window works under TLS (mutual included): negotiated inside the TLS
// session, every frame delivered in order on one connection.
func TestWindowTLS(t *testing.T) {
	pki := testutil.NewPKI(t, "framepush test CA")
	r := startReceiver(t, receiver.Options{TLS: pki.ServerTLS(true)})
	cfg, err := TLSConfig(pki.CA, pki.ClientCert, pki.ClientKey, "", false)
	if err != nil {
		t.Fatal(err)
	}
	s := newSender(t, Options{Addresses: []string{r.Addr}, TLS: cfg, Extension: true, Name: "tls-cam", Window: Window{Frames: 4}})
	var frames []frame.Frame
	for i := range 20 {
		frames = append(frames, testFrame(uint64(i+1), 30000*i+1))
	}
	for i, o := range submitAll(t, s, frames) {
		if o.Err != nil {
			t.Fatalf("frame %d: %v", i, o.Err)
		}
	}
	checkStored(t, r, frames)
	if st := s.Stats(); st.Pipelined != 1 || st.Connects != 1 {
		t.Errorf("stats %+v: want one pipelined connection", st)
	}
}

// Failover with a window: the first receiver stops mid-stream; the frames
// it had not answered go to the second one, in order, and every frame is
// stored by one of them.
func TestWindowFailover(t *testing.T) {
	a := startReceiver(t, receiver.Options{})
	b := startReceiver(t, receiver.Options{})
	s := newSender(t, Options{Addresses: []string{a.Addr, b.Addr}, Window: Window{Frames: 8}, Backoff: quick, AnswerTimeout: 5 * time.Second})
	var frames []frame.Frame
	for i := range 30 {
		frames = append(frames, testFrame(uint64(i+1), 20000))
	}
	ctx, cancel := context.WithTimeout(context.Background(), long)
	defer cancel()
	var todo, back []int
	for i := range frames {
		todo = append(todo, i)
	}
	delivered := map[int]bool{}
	done := func(o Outcome) {
		if o.Err == nil {
			delivered[o.Tag.(int)] = true
			return
		}
		back = append(back, o.Tag.(int))
	}
	stopped := false
	for len(delivered) < len(frames) && ctx.Err() == nil {
		if len(delivered) >= 10 && !stopped {
			a.Stop() // with frames in flight to it
			stopped = true
		}
		if len(todo) == 0 {
			s.Flush(ctx, done)
		} else {
			i := todo[0]
			todo = todo[1:]
			s.Submit(ctx, frames[i], i, done)
		}
		todo = append(back, todo...)
		back = nil
	}
	if len(delivered) != len(frames) {
		t.Fatalf("%d of %d delivered", len(delivered), len(frames))
	}
	// Each receiver holds a run of frames in order; together all of them.
	seen := map[string]bool{}
	for _, r := range []*recvtest.Receiver{a, b} {
		prev := -1
		for _, st := range r.Frames() {
			data, err := os.ReadFile(st.Path)
			if err != nil {
				t.Fatal(err)
			}
			seen[string(data)] = true
			i := slices.IndexFunc(frames, func(f frame.Frame) bool { return string(f.Data) == string(data) })
			if i < prev {
				t.Errorf("receiver %s: frame %d stored after frame %d", r.Addr, i+1, prev+1)
			}
			prev = max(prev, i)
		}
	}
	for i, f := range frames {
		if !seen[string(f.Data)] {
			t.Errorf("frame %d stored by neither receiver", i+1)
		}
	}
	if len(b.Frames()) == 0 {
		t.Errorf("nothing failed over to the second receiver")
	}
}

// With a receiver that does not pipeline, Connections spreads frames over
// parallel connections: the scripted receiver answers GOT IMAGE only once
// three frames are in flight at once (which stop-and-wait on one
// connection never reaches), and every frame is delivered exactly once.
func TestConnectionsParallel(t *testing.T) {
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	inFlight, peak := 0, 0
	got := map[string]int{}
	f := startFake(t, func(c net.Conn, _ int) {
		dec := wire.NewDecoder(c, 50*time.Millisecond)
		for {
			req, b, err := readFrame(c, dec)
			if err != nil || req.Kind != wire.KindSize {
				return
			}
			mu.Lock()
			got[string(b)]++
			inFlight++
			peak = max(peak, inFlight)
			cond.Broadcast()
			deadline := time.Now().Add(5 * time.Second)
			for peak < 3 && time.Now().Before(deadline) {
				mu.Unlock()
				time.Sleep(time.Millisecond)
				mu.Lock()
			}
			inFlight--
			mu.Unlock()
			if _, err := io.WriteString(c, wire.GotImage); err != nil {
				return
			}
		}
	})
	s := newSender(t, Options{Addresses: []string{f.addr}, Window: Window{Frames: 8}, Connections: 3, Terminator: wire.TermLF})
	ctx, cancel := context.WithTimeout(context.Background(), long)
	defer cancel()
	var frames []frame.Frame
	for i := range 12 {
		frames = append(frames, testFrame(uint64(i+1), 4000+i))
	}
	delivered := 0
	done := func(o Outcome) {
		if o.Err != nil {
			t.Errorf("frame %v: %v", o.Tag, o.Err)
			return
		}
		delivered++
	}
	for i := range frames {
		s.Submit(ctx, frames[i], i, done)
	}
	s.Flush(ctx, done)
	if delivered != len(frames) {
		t.Fatalf("%d of %d delivered", delivered, len(frames))
	}
	mu.Lock()
	defer mu.Unlock()
	if peak < 3 {
		t.Errorf("at most %d frames in flight at once, want 3", peak)
	}
	for i, fr := range frames {
		if got[string(fr.Data)] != 1 {
			t.Errorf("frame %d stored %d times", i+1, got[string(fr.Data)])
		}
	}
	if st := s.Stats(); st.Sent != uint64(len(frames)) || st.Failures != 0 {
		t.Errorf("stats %+v", st)
	}
}

// framerecv refuses a frame over its limit inside a window (ERR too-large
// in its turn, then it closes): the frames before it are delivered, it is
// refused permanently (possibly on the retry, if the close overtook the
// answer), the ones behind it go again and are delivered, in order.
func TestWindowTooLargeAtFramerecv(t *testing.T) {
	r := startReceiver(t, receiver.Options{MaxFrameSize: 20000})
	s := newSender(t, Options{Addresses: []string{r.Addr}, Window: Window{Frames: 8}, Backoff: quick})
	sizes := []int{1000, 2000, 300000, 3000, 4000}
	var frames []frame.Frame
	for i, n := range sizes {
		frames = append(frames, testFrame(uint64(i+1), n))
	}
	ctx, cancel := context.WithTimeout(context.Background(), long)
	defer cancel()
	todo := []int{0, 1, 2, 3, 4}
	var back []int
	results := map[int]error{}
	done := func(o Outcome) {
		i := o.Tag.(int)
		if o.Err == nil || IsPermanent(o.Err) {
			results[i] = o.Err
			return
		}
		back = append(back, i)
	}
	for len(results) < len(frames) && ctx.Err() == nil {
		if len(todo) == 0 {
			s.Flush(ctx, done)
		} else {
			i := todo[0]
			todo = todo[1:]
			s.Submit(ctx, frames[i], i, done)
		}
		todo = append(back, todo...)
		back = nil
	}
	for i := range frames {
		err, ok := results[i]
		switch {
		case !ok:
			t.Errorf("frame %d: no final outcome", i)
		case i == 2 && !IsPermanent(err):
			t.Errorf("the frame over the limit: %v, want a permanent refusal", err)
		case i != 2 && err != nil:
			t.Errorf("frame %d: %v", i, err)
		}
	}
	checkStored(t, r, []frame.Frame{frames[0], frames[1], frames[3], frames[4]})
}
