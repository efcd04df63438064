package agent

import (
	"testing"
	"time"

	"framepush/config"
	"framepush/internal/testutil"
)

// A reload builds a new Sender whose own counters start at zero; the
// agent's _total metrics must not follow them down (they went 4→1 and
// 3→0 after a SIGHUP).
func TestLinkCountersSurviveReload(t *testing.T) {
	addr := freeAddr(t)
	rv := startRecv(t, addr, nil)
	c := testConfig(addr)
	c.Trigger.FPS = 20
	next := c
	r, _ := startAgent(t, c, Options{Reload: func() (*config.Loaded, error) { return &config.Loaded{Config: next}, nil }})
	// A receiver restart makes the next connection a reconnect.
	testutil.WaitFor(t, "a connection", 30*time.Second, func() bool { return r.a.snapshot().Connects >= 1 })
	rv.Stop()
	testutil.WaitFor(t, "a failed delivery", 30*time.Second, func() bool { return r.a.metrics.failures.Get() >= 1 })
	startRecv(t, addr, nil)
	testutil.WaitFor(t, "a reconnect", 30*time.Second, func() bool {
		s := r.a.snapshot()
		return s.Reconnects >= 1 && s.Connects >= 2
	})
	before := r.a.snapshot()
	first := before
	next.Trigger.FPS = 25 // any change rebuilds the pipeline
	r.reload <- struct{}{}
	testutil.WaitFor(t, "the reload", 30*time.Second, func() bool { return r.a.metrics.reloads.Get() == 1 })
	for i := 0; i < 50; i++ { // sample while the new pipeline starts up
		after := r.a.snapshot()
		if after.Connects < before.Connects || after.Reconnects < before.Reconnects {
			t.Fatalf("after the reload connects %d (was %d), reconnects %d (was %d): a _total went backwards",
				after.Connects, before.Connects, after.Reconnects, before.Reconnects)
		}
		before = after
		time.Sleep(10 * time.Millisecond)
	}
	// The new pipeline's connection is counted on top of the old ones.
	testutil.WaitFor(t, "the new connection counted on top", 30*time.Second, func() bool {
		return r.a.snapshot().Connects > first.Connects
	})
}
