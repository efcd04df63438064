package agent

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"framepush/internal/testutil"
	"framepush/internal/testutil/refuser"
	"framepush/queue"
	"framepush/wire"
)

// refuseSeq1 refuses the frame numbered 1 of its run, whatever the run.
func refuseSeq1(m wire.Meta, _ []byte) bool { return strings.HasSuffix(m.ID, "-1") }

// One frame refused after its payload every time, with a retryable
// answer, must not block the frames behind it (it used to be retried
// forever: 0 of 40 frames delivered in 8 s at 5 frames/s).
func TestRefusedFrameGoesToDeadLettersAndOthersFlow(t *testing.T) {
	for _, tc := range []struct {
		name  string
		drop  string
		spool bool
	}{
		{"spool, drop oldest", "oldest", true},
		{"memory only, drop newest", "newest", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rv := refuser.Start(t, refuseSeq1)
			c := testConfig(rv.Addr)
			c.Trigger.FPS = 5
			c.Queue.Drop = tc.drop
			c.Queue.MemoryFrames = 4
			c.Queue.MaxAttempts = 3
			if tc.spool {
				c.Queue.SpoolDir = t.TempDir()
			}
			r, logs := startAgent(t, c, Options{})
			testutil.WaitFor(t, "10 frames accepted behind the refused one", 60*time.Second, func() bool {
				return len(rv.Accepted()) >= 10
			})
			if err := r.stop(t); err != nil {
				t.Fatal(err)
			}
			if n := rv.Refused(); n != 3 {
				t.Errorf("the receiver refused %d times, want max_attempts = 3", n)
			}
			for _, f := range rv.Accepted() {
				if strings.HasSuffix(f.Meta.ID, "-1") {
					t.Fatalf("refused frame %s was accepted", f.Meta.ID)
				}
			}
			if got := r.a.metrics.sent.Get(); got != uint64(len(rv.Accepted())) {
				t.Errorf("sent counter %d, receiver accepted %d", got, len(rv.Accepted()))
			}
			warn := "refused by the receiver too often"
			if n := strings.Count(logs.String(), warn); n != 1 {
				t.Errorf("%d warnings %q, want one:\n%s", n, warn, logs.String())
			}
			st := r.a.queue.Stats()
			if !tc.spool {
				if st.Dropped[queue.ReasonDeadLetter] != 1 {
					t.Fatalf("dropped as dead-letter: %d, want 1", st.Dropped[queue.ReasonDeadLetter])
				}
				return
			}
			if r.a.metrics.deadLettered.Get() != 1 {
				t.Errorf("framepush_dead_letters_total %d, want 1", r.a.metrics.deadLettered.Get())
			}
			dls, err := queue.ListDeadLetters(c.Queue.SpoolDir)
			if err != nil || len(dls) != 1 {
				t.Fatalf("dead letters %+v (%v), want the refused frame", dls, err)
			}
			d := dls[0]
			if !strings.HasSuffix(d.ID, "-1") || d.Attempts != 3 || !strings.Contains(d.LastRefusal, "internal") || d.Bytes == 0 {
				t.Fatalf("dead letter %+v: want id ...-1, 3 attempts, the ERR internal answer, its size", d)
			}
			if _, err := queue.ReadDeadLetter(c.Queue.SpoolDir, d.File); err != nil {
				t.Fatalf("dead letter unreadable: %v", err)
			}
		})
	}
}

// Frames left in the spool by one run and the frames of the next used to
// share ids (both counted from 1): anything de-duplicating by (name, id)
// would throw real frames away.
func TestIDsUniqueAcrossAgentRestarts(t *testing.T) {
	addr := freeAddr(t)
	c := testConfig(addr)
	c.Queue.SpoolDir = t.TempDir()
	c.Shutdown.Timeout = 2 * time.Second
	r, _ := startAgent(t, c, Options{})
	testutil.WaitFor(t, "frames spooled", 30*time.Second, func() bool { return r.a.metrics.captured.Get() >= 10 })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	first := r.a.metrics.captured.Get()

	rv := startRecv(t, addr, nil)
	r2, _ := startAgent(t, c, Options{})
	testutil.WaitFor(t, "old and new frames", 30*time.Second, func() bool { return uint64(len(rv.Frames())) >= first+10 })
	if err := r2.stop(t); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	runs := map[string]bool{}
	for _, s := range rv.Frames() {
		if ids[s.Meta.ID] {
			t.Fatalf("id %q stored twice", s.Meta.ID)
		}
		ids[s.Meta.ID] = true
		run, _, _ := strings.Cut(s.Meta.ID, "-")
		runs[run] = true
	}
	if len(runs) != 2 {
		t.Fatalf("frames from %d runs (%v), want 2", len(runs), runs)
	}
}

// With every frame refused for good, /healthz stayed 200 healthy:true
// while all frames were dropped, and each refusal logged two warnings.
func TestHealthReportsALinkThatDeliversNothing(t *testing.T) {
	rv := newMemRecv("127.0.0.1:1")
	rv.refuse = refuseOver(100)
	c := testConfig(rv.Addr)
	c.Trigger.FPS = 20
	c.HTTP.Listen = "127.0.0.1:0"
	c.HTTP.HealthyWithin = time.Second
	r, logs := startAgent(t, c, rv.options(Options{}))
	base := "http://" + r.a.Addr().String()
	testutil.WaitFor(t, "/healthz to turn unhealthy", 30*time.Second, func() bool {
		code, _ := get(t, base+"/healthz")
		return code == http.StatusServiceUnavailable
	})
	_, body := get(t, base+"/healthz")
	if !strings.Contains(body, "refused the last") || !strings.Contains(body, "too-large") {
		t.Fatalf("unhealthy /healthz does not say the receiver refuses everything: %s", body)
	}
	testutil.WaitFor(t, "many refusals", 30*time.Second, func() bool { return r.a.metrics.rejected.Get() >= 30 })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	// Summarised: one warning per period (10 s), not two per frame.
	var warns int
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "refused") {
			warns++
		}
	}
	if n := r.a.metrics.rejected.Get(); warns < 1 || uint64(warns) >= n/2 {
		t.Fatalf("%d refusal warnings for %d refused frames; want them summarised:\n%s", warns, n, logs.String())
	}
}
