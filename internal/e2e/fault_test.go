package e2e

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"

	"framepush/frame"
	"framepush/receiver"
	"framepush/sender"
	"framepush/wire"
)

// faultRig is sender -> toxiproxy (in process) -> receiver, all on
// loopback. The receiver can be stopped and restarted on the same address.
type faultRig struct {
	t      *testing.T
	dir    string
	addr   string // receiver's address, fixed across restarts
	proxy  *toxiproxy.Proxy
	ropt   receiver.Options
	srv    *receiver.Server
	served chan error
	stored atomic.Int64
}

func newFaultRig(t *testing.T, ropt receiver.Options) *faultRig {
	t.Helper()
	r := &faultRig{t: t, dir: t.TempDir(), ropt: ropt}
	r.ropt.Dir = r.dir
	r.ropt.MinFreeBytes = -1
	r.ropt.NoFsync = true // durability is tested in package receiver; here, delivery
	r.ropt.OnFrame = func(receiver.Stored) { r.stored.Add(1) }
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = l.Addr().String()
	r.serve(l)
	t.Cleanup(func() { r.stop(10 * time.Second) })

	api := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	r.proxy = toxiproxy.NewProxy(api, strings.ReplaceAll(t.Name(), "/", "_"), "127.0.0.1:0", r.addr)
	if err := r.proxy.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.proxy.Stop)
	return r
}

func (r *faultRig) serve(l net.Listener) {
	srv, err := receiver.New(r.ropt)
	if err != nil {
		r.t.Fatal(err)
	}
	r.srv = srv
	r.served = make(chan error, 1)
	go func() { r.served <- srv.Serve(l) }()
}

// stop shuts the receiver down, waiting at most grace for frames in
// flight (0: cut them off, unacknowledged).
func (r *faultRig) stop(grace time.Duration) {
	if r.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	_ = r.srv.Shutdown(ctx)
	<-r.served
	r.srv = nil
}

// restart starts a receiver again on the same address and folder.
func (r *faultRig) restart() {
	var l net.Listener
	var err error
	for range 100 { // the old listener's port is free once Serve returned; retry in case of a slow close
		if l, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatalf("cannot listen on %s again: %v", r.addr, err)
	}
	r.serve(l)
}

// toxic adds a toxic given as toxiproxy's JSON.
func (r *faultRig) toxic(js string) {
	r.t.Helper()
	if _, err := r.proxy.Toxics.AddToxicJson(strings.NewReader(js)); err != nil {
		r.t.Fatalf("toxic %s: %v", js, err)
	}
}

func (r *faultRig) sender(o sender.Options) *sender.Sender {
	o.Addresses = []string{r.proxy.Listen}
	if o.AnswerTimeout == 0 {
		o.AnswerTimeout = 3 * time.Second
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 3 * time.Second
	}
	return newSender(r.t, o)
}

// mixedSizes returns n frame sizes cycling from one byte to max, with a
// frame of big bytes every 40th frame when big > 0.
func mixedSizes(n, max, big int) []int {
	cycle := []int{1, 17, 512, 4 << 10, 20 << 10, 64 << 10, 150 << 10, 700 << 10, 1 << 20}
	sizes := make([]int, 0, n)
	for i := 0; len(sizes) < n; i++ {
		if big > 0 && i%40 == 39 {
			sizes = append(sizes, big)
			continue
		}
		if s := cycle[i%len(cycle)]; s <= max {
			sizes = append(sizes, s)
		}
	}
	return sizes
}

// deliverAll sends every frame in order with Deliver (retrying until
// acknowledged) under one overall deadline, so that no fault can hang the
// test, and checks the stored files against the manifest. It returns the
// number of duplicates (frames stored again because an ack was lost).
func (r *faultRig) deliverAll(s *sender.Sender, sizes []int, within time.Duration) (dups int, st sender.Stats) {
	t := r.t
	t.Helper()
	payloads := make([][]byte, len(sizes))
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	start := time.Now()
	total := 0
	frames := make([]frame.Frame, len(sizes))
	for i, n := range sizes {
		payloads[i] = payload(n, uint64(i+1))
		frames[i] = frameOf(i+1, payloads[i])
		total += n
		if s.Windowed() {
			continue
		}
		if err := s.Deliver(ctx, frames[i]); err != nil {
			t.Fatalf("frame %d of %d (%d bytes) not delivered after %v: %v (stats %+v)",
				i+1, len(sizes), n, time.Since(start).Round(time.Millisecond), err, s.Stats())
		}
	}
	if s.Windowed() {
		if err := submitAll(ctx, s, frames); err != nil {
			t.Fatalf("through a window: %v after %v (stats %+v)", err, time.Since(start).Round(time.Millisecond), s.Stats())
		}
	}
	st = s.Stats()
	closeCtx, cancelClose := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelClose()
	if err := s.Close(closeCtx); err != nil {
		t.Logf("close: %v", err)
	}
	m := manifestOf(payloads)
	dups = m.verify(t, r.dir)
	r.checkOrder(m)
	t.Logf("%d frames, %.1f MiB in %v: %d duplicates; sender: sent %d, failures %d, connects %d, last error %q",
		len(sizes), float64(total)/(1<<20), time.Since(start).Round(time.Millisecond), dups,
		st.Sent, st.Failures, st.Connects, st.LastError)
	if st.Sent != uint64(len(sizes)) {
		t.Errorf("sender counted %d delivered, want %d", st.Sent, len(sizes))
	}
	// A failure can duplicate the frames stored but not yet answered:
	// one stop-and-wait, up to a window's worth with one.
	if perFailure := uint64(max(1, s.WindowFrames())); uint64(dups) > st.Failures*perFailure {
		t.Errorf("%d duplicates but only %d failed attempts (at most %d frames unanswered each): a frame was stored twice without a lost ack", dups, st.Failures, perFailure)
	}
	if s.Windowed() && st.Pipelined == 0 {
		t.Errorf("the window was never granted")
	}
	return dups, st
}

// checkOrder checks that the first stored copy of each frame appears in
// the order the frames were sent: the sender sends one frame at a time,
// and framerecv's names sort in arrival order.
func (r *faultRig) checkOrder(m manifest) {
	files, _ := scanStored(r.t, r.dir)
	seen := make(map[string]bool, len(m))
	next := 0
	for _, f := range files {
		if seen[f.Sum] {
			continue
		}
		seen[f.Sum] = true
		for next < len(m) && seen[m[next]] {
			next++
		}
	}
	if next != len(m) {
		r.t.Errorf("frames were not stored in the order sent (first out-of-order at frame %d)", next+1)
	}
}

func TestFaultLatency(t *testing.T) {
	t.Parallel() // mostly waiting
	windows(t, func(t *testing.T, w sender.Window) {
		r := newFaultRig(t, receiver.Options{})
		r.toxic(`{"name":"lat_up","type":"latency","stream":"upstream","attributes":{"latency":3,"jitter":2}}`)
		r.toxic(`{"name":"lat_down","type":"latency","stream":"downstream","attributes":{"latency":3,"jitter":2}}`)
		s := r.sender(sender.Options{Mode: sender.ModePersistent, Terminator: wire.TermLF, Window: w})
		dups, st := r.deliverAll(s, mixedSizes(100, 1<<20, 3<<20), 45*time.Second)
		if dups != 0 || st.Failures != 0 {
			t.Errorf("latency alone caused %d duplicates and %d failures", dups, st.Failures)
		}
	})
}

func TestFaultBandwidth(t *testing.T) {
	r := newFaultRig(t, receiver.Options{})
	r.toxic(`{"name":"bw_up","type":"bandwidth","stream":"upstream","attributes":{"rate":32768}}`)
	r.toxic(`{"name":"bw_down","type":"bandwidth","stream":"downstream","attributes":{"rate":16}}`)
	s := r.sender(sender.Options{Mode: sender.ModeAuto, Terminator: wire.TermLF})
	dups, st := r.deliverAll(s, mixedSizes(100, 1<<20, 3<<20), 45*time.Second)
	if dups != 0 || st.Failures != 0 {
		t.Errorf("a bandwidth limit caused %d duplicates and %d failures", dups, st.Failures)
	}
}

// Every byte in both directions in its own write: SIZE lines, answers and
// payloads all arrive one byte at a time.
func TestFaultSlicer1Byte(t *testing.T) {
	small := []int{1, 17, 100, 512, 1500, 3000, 7, 2048}
	t.Run("persistent/lf", func(t *testing.T) {
		windows(t, func(t *testing.T, w sender.Window) {
			r := newFaultRig(t, receiver.Options{})
			r.toxic(`{"name":"sl_up","type":"slicer","stream":"upstream","attributes":{"average_size":1,"size_variation":0,"delay":0}}`)
			r.toxic(`{"name":"sl_down","type":"slicer","stream":"downstream","attributes":{"average_size":1,"size_variation":0,"delay":0}}`)
			s := r.sender(sender.Options{Mode: sender.ModePersistent, Terminator: wire.TermLF, Window: w})
			var sizes []int
			for range 4 {
				sizes = append(sizes, small...)
			}
			if dups, st := r.deliverAll(s, sizes, 45*time.Second); dups != 0 || st.Failures != 0 {
				t.Errorf("slicing caused %d duplicates and %d failures", dups, st.Failures)
			}
		})
	})
	// The seed's default bytes (no terminator) with the window: the
	// asking line is terminated, and so is every line inside the window.
	t.Run("auto/none/window", func(t *testing.T) {
		r := newFaultRig(t, receiver.Options{})
		r.toxic(`{"name":"sl_up","type":"slicer","stream":"upstream","attributes":{"average_size":1,"size_variation":0,"delay":0}}`)
		r.toxic(`{"name":"sl_down","type":"slicer","stream":"downstream","attributes":{"average_size":1,"size_variation":0,"delay":0}}`)
		s := r.sender(sender.Options{Mode: sender.ModeAuto, Terminator: wire.TermNone, Window: testWindow})
		if dups, st := r.deliverAll(s, append(small, small...), 45*time.Second); dups != 0 || st.Failures != 0 {
			t.Errorf("slicing caused %d duplicates and %d failures", dups, st.Failures)
		}
	})
	// The seed's unterminated SIZE, one byte per segment: the settle
	// window restarts at every digit. (It is widened here so that a
	// scheduler pause under -race cannot end a number early; the default
	// window is a trade-off documented in docs/PROTOCOL.md.)
	t.Run("seed/none", func(t *testing.T) {
		r := newFaultRig(t, receiver.Options{Settle: 250 * time.Millisecond})
		r.toxic(`{"name":"sl_up","type":"slicer","stream":"upstream","attributes":{"average_size":1,"size_variation":0,"delay":0}}`)
		r.toxic(`{"name":"sl_down","type":"slicer","stream":"downstream","attributes":{"average_size":1,"size_variation":0,"delay":0}}`)
		s := r.sender(sender.Options{Mode: sender.ModeSeed, Terminator: wire.TermNone})
		if dups, st := r.deliverAll(s, small, 45*time.Second); dups != 0 || st.Failures != 0 {
			t.Errorf("slicing caused %d duplicates and %d failures", dups, st.Failures)
		}
	})
}

// Each connection is cut after 1 MiB from the sender: mid-frame, every
// couple of frames. The cut frame is not acknowledged, so it is resent on a
// new connection; no partial file survives.
func TestFaultCutMidFrame(t *testing.T) {
	windows(t, func(t *testing.T, w sender.Window) {
		r := newFaultRig(t, receiver.Options{})
		r.toxic(`{"name":"cut_up","type":"limit_data","stream":"upstream","attributes":{"bytes":1048576}}`)
		s := r.sender(sender.Options{Mode: sender.ModePersistent, Terminator: wire.TermLF, Window: w})
		_, st := r.deliverAll(s, mixedSizes(100, 700<<10, 0), 45*time.Second)
		if st.Failures == 0 {
			t.Errorf("no failed attempt: the toxic did not cut any connection")
		}
	})
}

// Each connection carries 29 bytes of answers: GOT SIZE, GOT IMAGE,
// GOT SIZE and 4 bytes of the second GOT IMAGE. The second frame is stored
// but its ack is lost, so it is sent again: at-least-once, and the only
// way a duplicate may appear.
func TestFaultLostAck(t *testing.T) {
	windows(t, func(t *testing.T, w sender.Window) {
		r := newFaultRig(t, receiver.Options{})
		// With the window, the first connection's answers start with
		// "WINDOW 8\n" (9 bytes more).
		cut := 29
		if w.Frames > 1 {
			cut += 9
		}
		r.toxic(fmt.Sprintf(`{"name":"cut_down","type":"limit_data","stream":"downstream","attributes":{"bytes":%d}}`, cut))
		s := r.sender(sender.Options{Mode: sender.ModePersistent, Terminator: wire.TermLF, Window: w})
		dups, st := r.deliverAll(s, mixedSizes(40, 150<<10, 0), 45*time.Second)
		if dups == 0 {
			t.Errorf("no duplicate although acks were cut (failures %d)", st.Failures)
		}
	})
}

// Half of the connections are reset (RST) 2 ms after their first bytes,
// mid-frame for the larger ones.
func TestFaultResetPeer(t *testing.T) {
	r := newFaultRig(t, receiver.Options{})
	r.toxic(`{"name":"rst_up","type":"reset_peer","stream":"upstream","toxicity":0.5,"attributes":{"timeout":2}}`)
	s := r.sender(sender.Options{Mode: sender.ModeSeed, Terminator: wire.TermLF})
	_, st := r.deliverAll(s, mixedSizes(100, 1<<20, 3<<20), 45*time.Second)
	if st.Failures == 0 {
		t.Errorf("no failed attempt: no connection was reset")
	}
}

// Resets with a window, on a persistent connection: once 20 frames are
// stored, the proxy resets the connection at its next bytes (mid-window),
// and every new one, until the sender has failed twice; the unanswered
// frames are all resent.
func TestFaultResetPeerWindow(t *testing.T) {
	r := newFaultRig(t, receiver.Options{})
	s := r.sender(sender.Options{Mode: sender.ModePersistent, Terminator: wire.TermLF, Window: testWindow})
	done := r.faultDuring(s, `{"name":"rst_up","type":"reset_peer","stream":"upstream","attributes":{"timeout":0}}`, "rst_up", 20, 2)
	_, st := r.deliverAll(s, mixedSizes(100, 1<<20, 3<<20), 45*time.Second)
	<-done
	if st.Failures == 0 {
		t.Errorf("no failed attempt: no connection was reset")
	}
}

// faultDuring adds the toxic js once stored frames reach after, and removes
// it (name) once the sender counted failures failures. The returned
// channel is closed when it is removed.
func (r *faultRig) faultDuring(s *sender.Sender, js, name string, after int64, failures uint64) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		deadline := time.Now().Add(30 * time.Second)
		for r.stored.Load() < after && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		r.toxic(js)
		for s.Stats().Failures < failures && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if err := r.proxy.Toxics.RemoveToxic(context.Background(), name); err != nil {
			r.t.Errorf("removing toxic %s: %v", name, err)
		}
	}()
	return done
}

// A third of the connections stall: nothing comes back, ever, and the
// proxy never closes them. Only the sender's answer deadline ends them.
func TestFaultStall(t *testing.T) {
	t.Parallel() // mostly waiting
	r := newFaultRig(t, receiver.Options{})
	r.toxic(`{"name":"stall_down","type":"timeout","stream":"downstream","toxicity":0.3,"attributes":{"timeout":0}}`)
	s := r.sender(sender.Options{Mode: sender.ModeSeed, Terminator: wire.TermLF, AnswerTimeout: 250 * time.Millisecond})
	_, st := r.deliverAll(s, mixedSizes(30, 150<<10, 0), 45*time.Second)
	if st.Failures == 0 {
		t.Errorf("no failed attempt: no connection stalled")
	}
}

// Stalls with a window: the proxy stops passing answers mid-stream (after
// 10 frames, until the sender gave up on one connection); only the answer
// deadline of the oldest frame in flight ends the stalled connection, and
// its window goes again.
func TestFaultStallWindow(t *testing.T) {
	t.Parallel() // mostly waiting
	r := newFaultRig(t, receiver.Options{})
	s := r.sender(sender.Options{Mode: sender.ModeAuto, Terminator: wire.TermLF, AnswerTimeout: 250 * time.Millisecond, Window: testWindow})
	stalled := r.faultDuring(s, `{"name":"stall_down","type":"timeout","stream":"downstream","attributes":{"timeout":0}}`, "stall_down", 10, 1)
	_, st := r.deliverAll(s, mixedSizes(60, 150<<10, 0), 45*time.Second)
	<-stalled
	if st.Failures == 0 {
		t.Errorf("no failed attempt: no connection stalled")
	}
}

// The receiver is stopped mid-stream, cutting off the frame in flight, and
// started again on the same address 300 ms later.
func TestFaultReceiverRestart(t *testing.T) {
	windows(t, testReceiverRestart)
}

func testReceiverRestart(t *testing.T, w sender.Window) {
	r := newFaultRig(t, receiver.Options{})
	s := r.sender(sender.Options{Mode: sender.ModeAuto, Terminator: wire.TermLF, Window: w})
	sizes := mixedSizes(150, 1<<20, 3<<20)
	restarted := make(chan struct{})
	go func() {
		defer close(restarted)
		deadline := time.Now().Add(30 * time.Second)
		for r.stored.Load() < int64(len(sizes)/3) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		r.stop(0) // frames in flight are cut off, unacknowledged
		time.Sleep(300 * time.Millisecond)
		r.restart()
	}()
	_, st := r.deliverAll(s, sizes, 45*time.Second)
	<-restarted
	if st.Failures == 0 {
		t.Errorf("no failed attempt across a receiver restart")
	}
}
