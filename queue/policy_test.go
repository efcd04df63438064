package queue

import (
	"context"
	"errors"
	"maps"
	"runtime"
	"slices"
	"testing"
	"time"

	"framepush/frame"
)

// Stats used to expire frames and delete their spool files; it only reads
// now, however often it is called.
func TestStatsHasNoSideEffects(t *testing.T) {
	clk := &fakeClock{t: t0}
	dir := t.TempDir()
	q, lb := openQ(t, Options{SpoolDir: dir, MaxAge: time.Hour, Now: clk.Now})
	q.SetLinkUp(false) // to the spool
	for seq := uint64(1); seq <= 3; seq++ {
		f := mkFrame(seq, frame.Interval, 10)
		f.Time = clk.Now()
		put(t, q, f)
	}
	clk.Add(2 * time.Hour) // every frame is past MaxAge now
	files := wantFiles(t, dir, 3)
	logged := lb.String()
	first := q.Stats()
	for range 20 {
		st := q.Stats()
		if st.Pending != 3 || st.SpoolFrames != 3 || st.Dropped[ReasonExpired] != 0 {
			t.Fatalf("Stats changed the queue: %+v", st)
		}
		if st.Enqueued != first.Enqueued || st.Spooled != first.Spooled || st.SpoolErrors != first.SpoolErrors ||
			st.OldestAge != first.OldestAge || !maps.Equal(st.Dropped, first.Dropped) {
			t.Fatalf("Stats changed between calls: %+v then %+v", first, st)
		}
	}
	if got := frameFiles(t, dir); !slices.Equal(got, files) {
		t.Fatalf("spool files %v after Stats, want %v", got, files)
	}
	if lb.String() != logged {
		t.Fatalf("Stats logged:\n%s", lb.String()[len(logged):])
	}
	// They were due: the next movement expires them.
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := q.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next handed out an expired frame: %v", err)
	}
	wantDropped(t, q, map[string]uint64{ReasonExpired: 3})
	wantFiles(t, dir, 0)
}

// A queue where nothing moves (receiver down, trigger quiet) still expires
// its frames, logs and counts them, and deletes their files, with nobody
// calling Stats: the queue's timer does it. WaitEmpty sees it.
func TestIdleQueueExpiresWithoutStats(t *testing.T) {
	dir := t.TempDir()
	q, lb := openQ(t, Options{SpoolDir: dir, MaxAge: 20 * time.Millisecond, NoFsync: true})
	q.SetLinkUp(false)
	f := mkFrame(1, frame.GPIO, 10)
	f.Time = time.Time{} // stamped by Put: it cannot be expired on arrival
	put(t, q, f)
	wantFiles(t, dir, 1)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := q.WaitEmpty(ctx); err != nil {
		t.Fatalf("the idle queue never expired its frame: %v", err)
	}
	if len(lb.lines("level=WARN", "frame dropped", "reason=expired", seqAttr(1))) != 1 {
		t.Fatalf("expiry not logged:\n%s", lb)
	}
	wantFiles(t, dir, 0)
	if st := q.Stats(); st.Pending != 0 || st.SpoolFrames != 0 || st.Dropped[ReasonExpired] != 1 {
		t.Fatalf("after the timer: %+v", st)
	}

	// In flight a frame does not expire; nacked, it does, later, on the
	// timer. (Stamped a little ahead, so that it is not yet due at Nack.)
	f.Time = time.Now().Add(500 * time.Millisecond)
	put(t, q, f)
	it, err := q.Next(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Nack(it); err != nil {
		t.Fatal(err)
	}
	if err := q.WaitEmpty(ctx); err != nil {
		t.Fatalf("a nacked frame never expired: %v", err)
	}
	wantDropped(t, q, map[string]uint64{ReasonExpired: 2})
}

// WaitEmpty returns when the last frame is acked, with ctx's error when
// ctx ends first, and ErrClosed when the queue closes.
func TestWaitEmpty(t *testing.T) {
	q, _ := openQ(t, Options{SpoolDir: t.TempDir(), NoFsync: true})
	put(t, q, mkFrame(1, frame.Interval, 10), mkFrame(2, frame.GPIO, 10))
	done := make(chan error, 1)
	go func() { done <- q.WaitEmpty(context.Background()) }()
	if err := q.Ack(next(t, q)); err != nil {
		t.Fatal(err)
	}
	runtime.Gosched()
	select {
	case err := <-done:
		t.Fatalf("WaitEmpty returned %v with a frame still queued", err)
	default:
	}
	it := next(t, q)
	if err := q.WaitSettled(ctxDone()); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitSettled with a frame in flight and ctx done: %v", err)
	}
	settled := make(chan error, 1)
	go func() { settled <- q.WaitSettled(context.Background()) }()
	if err := q.Ack(it); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("WaitEmpty after the last Ack: %v", err)
	}
	if err := <-settled; err != nil {
		t.Fatalf("WaitSettled after the last Ack: %v", err)
	}
	if err := q.WaitEmpty(ctxDone()); err != nil {
		t.Fatalf("WaitEmpty on an empty queue: %v", err)
	}

	put(t, q, mkFrame(3, frame.Interval, 10))
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- q.WaitEmpty(ctx) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitEmpty after cancel: %v", err)
	}

	// A nacked frame settles the queue without emptying it.
	it = next(t, q)
	go func() { settled <- q.WaitSettled(context.Background()) }()
	if err := q.Nack(it); err != nil {
		t.Fatal(err)
	}
	if err := <-settled; err != nil {
		t.Fatalf("WaitSettled after Nack: %v", err)
	}

	go func() { done <- q.WaitEmpty(context.Background()) }()
	q.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("WaitEmpty when closed with a frame left: %v", err)
	}
	if err := q.WaitSettled(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("WaitSettled after Close: %v", err)
	}
}
