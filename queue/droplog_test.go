package queue

import (
	"sync"
	"testing"
	"time"
)

// A long outage without a spool drops every frame: each drop is logged,
// but only the first of a reason in each 10 s as a warning (with the count
// of those logged at debug level since), so the journal is not flooded.
func TestDropWarningsAreRateLimited(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1700000000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	q, lb := openQ(t, Options{MemoryFrames: 2, Now: clock})
	for i := uint64(1); i <= 50; i++ {
		if err := q.Put(mkFrame(i, "continuous", 100)); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	if got := len(lb.lines("frame dropped")); got != 48 {
		t.Fatalf("%d drop lines for 48 drops", got)
	}
	if warn := lb.lines("level=WARN", "frame dropped"); len(warn) != 1 {
		t.Fatalf("%d warnings within 10 s, want 1:\n%v", len(warn), warn)
	}
	mu.Lock()
	now = now.Add(dropWarnEvery)
	mu.Unlock()
	if err := q.Put(mkFrame(51, "continuous", 100)); err != nil {
		t.Fatal(err)
	}
	warn := lb.lines("level=WARN", "frame dropped")
	if len(warn) != 2 || len(lb.lines("level=WARN", "dropped_since_last_warning=47", "total=49")) != 1 {
		t.Fatalf("second warning should count the 47 debug-level drops:\n%v", warn)
	}
	if st := q.Stats(); st.Dropped[ReasonFullOldest] != 49 {
		t.Fatalf("counted %d drops", st.Dropped[ReasonFullOldest])
	}
}
