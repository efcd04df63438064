package queue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"framepush/frame"
)

func TestOrderAckNack(t *testing.T) {
	q, _ := openQ(t, Options{})
	for s := uint64(1); s <= 5; s++ {
		put(t, q, mkFrame(s, "interval", 100+int(s)))
	}
	a := next(t, q)
	if a.Frame.Seq != 1 || a.Attempts != 1 {
		t.Fatalf("first Next: seq %d attempt %d, want 1 and 1", a.Frame.Seq, a.Attempts)
	}
	// A second Next pipelines the following frame.
	b := next(t, q)
	if b.Frame.Seq != 2 {
		t.Fatalf("second Next: seq %d, want 2", b.Frame.Seq)
	}
	if err := q.Nack(b); err != nil {
		t.Fatal(err)
	}
	if err := q.Nack(a); err != nil {
		t.Fatal(err)
	}
	a2 := next(t, q)
	if a2.Frame.Seq != 1 || a2.Attempts != 2 {
		t.Fatalf("after Nack: seq %d attempt %d, want seq 1 again, attempt 2", a2.Frame.Seq, a2.Attempts)
	}
	if err := q.Ack(a2); err != nil {
		t.Fatal(err)
	}
	if err := q.Ack(a2); err == nil || !strings.Contains(err.Error(), "not handed out") {
		t.Fatalf("double Ack: %v", err)
	}
	if err := q.Nack(a2); err == nil {
		t.Fatal("Nack after Ack accepted")
	}
	if err := q.Ack(Item{}); err == nil {
		t.Fatal("Ack of a zero Item accepted")
	}
	wantSeqs(t, "rest", drain(t, q), 2, 3, 4, 5)
	st := q.Stats()
	if st.Enqueued != 5 || st.Delivered != 5 || st.Retried != 2 || st.Pending != 0 || st.MemoryBytes != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestNextBlocksUntilPutOrCancel(t *testing.T) {
	q, _ := openQ(t, Options{})
	if _, err := q.Next(ctxDone()); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next on an empty queue with a cancelled context: %v", err)
	}
	got := make(chan Item)
	go func() {
		it, err := q.Next(context.Background())
		if err != nil {
			t.Error(err)
		}
		got <- it
	}()
	waitBlocked(q)
	put(t, q, mkFrame(7, "gpio", 10))
	if it := <-got; it.Frame.Seq != 7 {
		t.Fatalf("woken Next got seq %d", it.Frame.Seq)
	}

	// Close wakes a parked Next.
	errc := make(chan error)
	go func() { _, err := q.Next(context.Background()); errc <- err }()
	waitBlocked(q)
	q.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
	if err := q.Put(mkFrame(8, "gpio", 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close: %v", err)
	}
}

// While the link is up and memory has room, the card is never written.
func TestNoSpoolWriteWhileLinkUp(t *testing.T) {
	dir := t.TempDir()
	q, _ := openQ(t, Options{SpoolDir: dir, MemoryFrames: 4})
	var seq uint64
	for round := range 100 {
		for range 1 + round%2 {
			seq++
			put(t, q, mkFrame(seq, "continuous", 1000))
		}
		it := next(t, q)
		if round%5 == 0 {
			q.Nack(it)
			it = next(t, q)
		}
		q.Ack(it)
		for q.Stats().Pending > 2 {
			q.Ack(next(t, q))
		}
		wantFiles(t, dir, 0)
	}
	if st := q.Stats(); st.Spooled != 0 || st.SpoolFrames != 0 {
		t.Fatalf("spool written while the link was up: %+v", st)
	}
	drain(t, q)
	wantFiles(t, dir, 0)
}

func TestSpillWhenMemoryFull(t *testing.T) {
	dir := t.TempDir()
	q, _ := openQ(t, Options{SpoolDir: dir, MemoryFrames: 3})
	for s := uint64(1); s <= 5; s++ {
		put(t, q, mkFrame(s, "interval", 500))
	}
	files := wantFiles(t, dir, 2)
	st := q.Stats()
	if st.MemoryFrames != 3 || st.SpoolFrames != 2 || st.SpoolBytes != 1000 || st.Spooled != 2 {
		t.Fatalf("stats %+v", st)
	}
	for i, s := range []uint64{4, 5} {
		if run, n, _ := parseName(files[i]); run != 1 || n != s {
			t.Fatalf("file %s: want run 1 position %d", files[i], s)
		}
	}
	wantSeqs(t, "delivery", drain(t, q), 1, 2, 3, 4, 5)
	wantFiles(t, dir, 0) // Ack deletes
}

func TestSpillWhenLinkDown(t *testing.T) {
	dir := t.TempDir()
	q, lb := openQ(t, Options{SpoolDir: dir, MemoryFrames: 4})
	put(t, q, mkFrame(1, "interval", 300), mkFrame(2, "gpio", 301))
	wantFiles(t, dir, 0)
	q.SetLinkUp(false)
	wantFiles(t, dir, 2)
	if st := q.Stats(); st.MemoryFrames != 0 || st.SpoolFrames != 2 || st.LinkUp {
		t.Fatalf("after link down: %+v", st)
	}
	put(t, q, mkFrame(3, "interval", 302))
	wantFiles(t, dir, 3)
	q.SetLinkUp(true)
	put(t, q, mkFrame(4, "interval", 303))
	wantFiles(t, dir, 3)
	if len(lb.lines("link down", "frames=2")) != 1 {
		t.Fatalf("link-down spill not logged:\n%s", lb)
	}
	wantSeqs(t, "delivery", drain(t, q), 1, 2, 3, 4)
	wantFiles(t, dir, 0)
}

// A frame in flight when the link drops is spooled when it comes back
// undelivered.
func TestNackWhileLinkDownSpools(t *testing.T) {
	dir := t.TempDir()
	q, _ := openQ(t, Options{SpoolDir: dir})
	put(t, q, mkFrame(1, "gpio", 4096))
	it := next(t, q)
	q.SetLinkUp(false)
	wantFiles(t, dir, 0)
	q.Nack(it)
	wantFiles(t, dir, 1)
	it = next(t, q) // read back from the spool and checked
	if it.Attempts != 2 || len(it.Frame.Data) != 4096 {
		t.Fatalf("redelivery: attempt %d, %d bytes", it.Attempts, len(it.Frame.Data))
	}
	q.Ack(it)
	wantFiles(t, dir, 0)
}

func TestCloseSpillsMemoryAndInFlight(t *testing.T) {
	dir := t.TempDir()
	q, _ := openQ(t, Options{SpoolDir: dir})
	put(t, q, mkFrame(1, "interval", 10), mkFrame(2, "interval", 20), mkFrame(3, "gpio", 30))
	inflight := next(t, q)
	wantFiles(t, dir, 0)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	wantFiles(t, dir, 3)
	if err := q.Ack(inflight); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ack after Close: %v", err)
	}
	wantFiles(t, dir, 3) // the in-flight frame is kept: it is resent after restart

	q2, _ := openQ(t, Options{SpoolDir: dir})
	if st := q2.Stats(); st.Recovered != 3 {
		t.Fatalf("recovered %d, want 3", st.Recovered)
	}
	wantSeqs(t, "after restart", drain(t, q2), 1, 2, 3)
}

func TestCloseSpillHonoursSpoolLimit(t *testing.T) {
	for _, tc := range []struct {
		policy  DropPolicy
		kept    []uint64
		dropped uint64 // seq
	}{
		{DropOldest, []uint64{2, 3}, 1},
		{DropNewest, []uint64{1, 2}, 3},
	} {
		t.Run(string(tc.policy), func(t *testing.T) {
			dir := t.TempDir()
			q, lb := openQ(t, Options{SpoolDir: dir, SpoolMaxFrames: 2, Drop: tc.policy})
			put(t, q, mkFrame(1, "interval", 10), mkFrame(2, "interval", 10), mkFrame(3, "interval", 10))
			q.Close()
			wantFiles(t, dir, 2)
			wantDropped(t, q, map[string]uint64{"full-" + string(tc.policy): 1})
			if len(lb.lines("frame dropped", seqAttr(tc.dropped))) != 1 {
				t.Fatalf("drop of seq %d not logged:\n%s", tc.dropped, lb)
			}
			q2, _ := openQ(t, Options{SpoolDir: dir})
			wantSeqs(t, "after restart", drain(t, q2), tc.kept...)
		})
	}
}

func TestMemoryOnlyCloseCountsLoss(t *testing.T) {
	q, lb := openQ(t, Options{})
	put(t, q, mkFrame(1, "interval", 10), mkFrame(2, "gpio", 10))
	q.Close()
	wantDropped(t, q, map[string]uint64{ReasonShutdown: 2})
	if n := len(lb.lines("reason=shutdown")); n != 2 {
		t.Fatalf("%d shutdown drops logged, want 2:\n%s", n, lb)
	}
	if q.Close() != nil {
		t.Fatal("second Close failed")
	}
}

func TestSpoolWriteFailure(t *testing.T) {
	t.Run("kept in memory", func(t *testing.T) {
		dir := t.TempDir()
		q, lb := openQ(t, Options{SpoolDir: dir, MemoryFrames: 1})
		q.SetLinkUp(false)
		os.RemoveAll(dir) // every write now fails
		if err := q.Put(mkFrame(1, "gpio", 10)); err != nil {
			t.Fatalf("frame kept in memory, yet Put failed: %v", err)
		}
		err := q.Put(mkFrame(2, "gpio", 10))
		wantErrIs(t, err, ErrDropped)
		st := q.Stats()
		if st.SpoolErrors != 2 || st.MemoryFrames != 1 || st.SpoolFrames != 0 {
			t.Fatalf("stats %+v", st)
		}
		wantDropped(t, q, map[string]uint64{ReasonSpoolError: 1})
		if len(lb.lines("cannot write frame to the spool")) != 2 {
			t.Fatalf("write failures not logged:\n%s", lb)
		}
		wantSeqs(t, "delivery", drain(t, q), 1)
	})
	t.Run("always spool says not durable", func(t *testing.T) {
		dir := t.TempDir()
		q, _ := openQ(t, Options{SpoolDir: dir, AlwaysSpool: true})
		os.RemoveAll(dir)
		wantErrIs(t, q.Put(mkFrame(1, "gpio", 10)), ErrNotDurable)
		wantSeqs(t, "delivery", drain(t, q), 1)
	})
}

func TestAlwaysSpoolWritesBeforePutReturns(t *testing.T) {
	dir := t.TempDir()
	q, _ := openQ(t, Options{SpoolDir: dir, AlwaysSpool: true, MemoryFrames: 2})
	for s := uint64(1); s <= 4; s++ {
		put(t, q, mkFrame(s, "interval", 64))
		wantFiles(t, dir, int(s))
	}
	st := q.Stats()
	if st.MemoryFrames != 2 || st.SpoolFrames != 4 || st.Pending != 4 {
		t.Fatalf("memory should cache 2 of 4 spooled frames: %+v", st)
	}
	// Frames 1, 2 come from the cache, 3, 4 from the card.
	wantSeqs(t, "delivery", drain(t, q), 1, 2, 3, 4)
	wantFiles(t, dir, 0)
}

// Frames whose file is still being written can be delivered and acked; the
// writer then deletes the file.
func TestAckWhileWriting(t *testing.T) {
	dir := t.TempDir()
	q, _ := openQ(t, Options{SpoolDir: dir, MemoryFrames: 1})
	q.SetLinkUp(false)
	e := &entry{run: 9, n: 1, frame: mkFrame(1, "gpio", 10), size: 10}
	q.mu.Lock()
	e.file = fileName(e.run, e.n, e.frame.Time)
	e.writing = true
	q.setSpooled(e, true)
	q.items = append(q.items, e)
	q.io.Add(1)
	q.mu.Unlock()
	it := next(t, q)
	if err := q.Ack(it); err != nil {
		t.Fatal(err)
	}
	if out := q.finishWrite(e, e.file, false, q.sp.write(e.file, &it.Frame)); out != keptDurable {
		t.Fatalf("write outcome %d", out)
	}
	wantFiles(t, dir, 0)
	if st := q.Stats(); st.SpoolFrames != 0 || st.Pending != 0 || st.Delivered != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// Several capture goroutines, one sender, the link flapping: every frame
// arrives once acked, in order per source, intact.
func TestConcurrentProducers(t *testing.T) {
	const producers, perProducer = 4, 300
	dir := t.TempDir()
	q, _ := openQ(t, Options{SpoolDir: dir, MemoryFrames: 4, NoFsync: true})
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			src := fmt.Sprintf("p%d", p)
			for s := uint64(1); s <= perProducer; s++ {
				f := frame.Frame{Data: payload(src, s, 64+int(s%200)), Seq: s, Time: time.Now(), Source: src, Trigger: "continuous"}
				if err := q.Put(f); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	stop := make(chan struct{})
	var flapper sync.WaitGroup
	flapper.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				q.SetLinkUp(true)
				return
			default:
				q.SetLinkUp(i%2 == 1)
				q.Stats()
			}
		}
	})
	last := map[string]uint64{}
	for n := 0; n < producers*perProducer; {
		it, err := q.Next(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		checkFrame(t, it.Frame)
		if it.Frame.Seq%7 == 0 && it.Attempts == 1 {
			q.Nack(it)
			continue
		}
		if it.Frame.Seq != last[it.Frame.Source]+1 {
			t.Fatalf("%s: seq %d after %d", it.Frame.Source, it.Frame.Seq, last[it.Frame.Source])
		}
		last[it.Frame.Source] = it.Frame.Seq
		if err := q.Ack(it); err != nil {
			t.Fatal(err)
		}
		n++
	}
	wg.Wait()
	close(stop)
	flapper.Wait()
	st := q.Stats()
	if st.Delivered != producers*perProducer || st.Pending != 0 || st.SpoolFrames != 0 || st.MemoryFrames != 0 {
		t.Fatalf("stats %+v", st)
	}
	wantDropped(t, q, nil)
	wantFiles(t, dir, 0)
}

func TestOptions(t *testing.T) {
	d := Options{}.WithDefaults()
	if d.MemoryFrames != 16 || d.MemoryBytes != 8<<20 || d.SpoolMaxBytes != 512<<20 ||
		d.SpoolMaxFrames != 10000 || d.MaxAge != 0 || d.Drop != DropOldest || d.AlwaysSpool || d.NoFsync || d.NoTriggerPriority {
		t.Fatalf("defaults %+v", d)
	}
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{MemoryFrames: -1}, "MemoryFrames is -1"},
		{Options{MemoryBytes: -5}, "MemoryBytes is -5"},
		{Options{SpoolMaxBytes: -1}, "SpoolMaxBytes is -1"},
		{Options{SpoolMaxFrames: -2}, "SpoolMaxFrames is -2"},
		{Options{MaxAge: -time.Second}, "MaxAge is -1s"},
		{Options{Drop: "random"}, `drop policy "random" is unknown; use "oldest" or "newest"`},
		{Options{AlwaysSpool: true}, "AlwaysSpool needs a SpoolDir"},
	} {
		if _, err := Open(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%+v): %v, want an error containing %q", tc.o, err, tc.want)
		}
	}
	for _, tr := range []frame.TriggerKind{"gpio", "signal", "pre-trigger"} {
		if !Triggered(tr) {
			t.Errorf("%s not triggered", tr)
		}
	}
	for _, tr := range []frame.TriggerKind{"interval", "continuous", ""} {
		if Triggered(tr) {
			t.Errorf("%q triggered", tr)
		}
	}
}

// Close racing with producers: every Put that returned nil is in the spool
// afterwards, whether it was in memory, being written, or written.
func TestCloseDuringPuts(t *testing.T) {
	const producers, perProducer = 3, 400
	dir := t.TempDir()
	q, _ := openQ(t, Options{SpoolDir: dir, MemoryFrames: 4, NoFsync: true})
	var mu sync.Mutex
	accepted := map[string]uint64{} // source -> last seq Put accepted
	total := 0
	half := make(chan struct{})
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			src := fmt.Sprintf("p%d", p)
			for s := uint64(1); s <= perProducer; s++ {
				err := q.Put(frame.Frame{Data: payload(src, s, 128), Seq: s, Time: time.Now(), Source: src, Trigger: "interval"})
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				accepted[src] = s
				if total++; total == producers*perProducer/4 {
					close(half)
				}
				mu.Unlock()
			}
		})
	}
	<-half
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	q2, _ := openQ(t, Options{SpoolDir: dir})
	got := map[string]uint64{}
	for _, f := range drain(t, q2) {
		if f.Seq != got[f.Source]+1 {
			t.Fatalf("%s: seq %d after %d", f.Source, f.Seq, got[f.Source])
		}
		got[f.Source] = f.Seq
	}
	for src, last := range accepted {
		if got[src] != last {
			t.Fatalf("%s: Put accepted up to seq %d, spool held up to %d", src, last, got[src])
		}
	}
	wantDropped(t, q, nil)
}
