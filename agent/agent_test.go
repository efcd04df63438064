package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/jpeg"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"framepush/capture/testpattern"
	"framepush/config"
	"framepush/internal/testutil"
	"framepush/internal/testutil/recvtest"
	"framepush/receiver"
	"framepush/wire"
)

// startRecv runs a real receiver on loopback (addr "127.0.0.1:0" for any
// port) that records what it stored; tweak adjusts its options.
func startRecv(t *testing.T, addr string, tweak func(*receiver.Options)) *recvtest.Receiver {
	t.Helper()
	var o receiver.Options
	if tweak != nil {
		tweak(&o)
	}
	return recvtest.Start(t, addr, o)
}

// freeAddr returns a loopback address nobody listens on (for now).
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// testConfig is the default configuration, faster, pointed at addr.
func testConfig(addr string) config.Config {
	c := config.Default()
	c.Name = "agent-test"
	c.Source.Width, c.Source.Height = 160, 120
	c.Trigger.FPS = 50
	c.Server.Addresses = []string{addr}
	c.Server.Terminator = "lf"
	c.Server.Extension = true
	c.Server.ConnectTimeout = 2 * time.Second
	c.Server.Backoff = config.Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond, Multiplier: 2}
	c.HTTP.Listen = ""
	c.Queue.Fsync = false
	c.Shutdown.Timeout = 10 * time.Second
	return c
}

type running struct {
	a      *Agent
	cancel context.CancelFunc
	done   chan error
	reload chan struct{}
}

func startAgent(t *testing.T, c config.Config, o Options) (*running, *testutil.Buffer) {
	t.Helper()
	logs := &testutil.Buffer{}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if o.Notify == nil {
		o.Notify = func(string) {}
	}
	a, err := New(c, o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{a: a, cancel: cancel, done: make(chan error, 1), reload: make(chan struct{}, 1)}
	go func() { r.done <- a.Run(ctx, r.reload) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			t.Error("agent did not stop")
		}
	})
	return r, logs
}

func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("agent did not stop within 30 s")
		return nil
	}
}

// checkFrames asserts that the stored frames (storedFrames of a loopback
// receiver, or a memRecv's) are decodable JPEGs of the configured size
// with strictly increasing ids and capture times.
func checkFrames(t *testing.T, st []delivered, w, h int) {
	t.Helper()
	var lastID uint64
	var lastRun string
	var lastTime time.Time
	for i, s := range st {
		img, err := jpeg.Decode(bytes.NewReader(s.Data))
		if err != nil {
			t.Fatalf("frame %d (%s) does not decode: %v", i, s.ID, err)
		}
		if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
			t.Fatalf("frame %d is %dx%d, want %dx%d", i, b.Dx(), b.Dy(), w, h)
		}
		if s.Name != "agent-test" {
			t.Fatalf("frame %d name %q", i, s.Name)
		}
		run, seq, ok := strings.Cut(s.ID, "-")
		id, perr := strconv.ParseUint(seq, 10, 64)
		if !ok || perr != nil || !wire.ValidToken(run) || strings.Contains(run, "-") {
			t.Fatalf("frame %d id %q is not <run>-<seq>", i, s.ID)
		}
		if i > 0 && run != lastRun {
			t.Fatalf("frame %d id %q: run changed from %q within one run", i, s.ID, lastRun)
		}
		lastRun = run
		if id <= lastID && i > 0 {
			t.Fatalf("frame %d id %d after %d: not in capture order", i, id, lastID)
		}
		if !s.Time.After(lastTime) && i > 0 {
			t.Fatalf("frame %d capture time %v not after %v", i, s.Time, lastTime)
		}
		lastID, lastTime = id, s.Time
	}
}

func TestDeliversEveryCapturedFrame(t *testing.T) {
	rv := newMemRecv("127.0.0.1:1")
	c := testConfig(rv.Addr)
	r, _ := startAgent(t, c, rv.options(Options{}))
	testutil.WaitFor(t, "20 frames at the receiver", 30*time.Second, func() bool { return len(rv.Frames()) >= 20 })
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	captured := r.a.metrics.captured.Get()
	st := rv.Frames()
	if uint64(len(st)) != captured {
		t.Fatalf("captured %d frames, receiver stored %d: an orderly stop must deliver everything", captured, len(st))
	}
	if got := r.a.metrics.sent.Get(); got != captured {
		t.Fatalf("sent counter %d, captured %d", got, captured)
	}
	checkFrames(t, st, 160, 120)
}

func TestOutageSpoolsThenDeliversInOrder(t *testing.T) {
	rv := newMemRecv("127.0.0.1:1")
	rv.setDown(true)
	c := testConfig(rv.Addr)
	c.Queue.SpoolDir = t.TempDir()
	c.Queue.MemoryFrames = 4
	r, logs := startAgent(t, c, rv.options(Options{}))
	testutil.WaitFor(t, "frames spooled while the receiver is down", 30*time.Second, func() bool {
		return r.a.queue.Stats().SpoolFrames >= 10
	})
	if !strings.Contains(logs.String(), "cannot deliver frames") {
		t.Errorf("no warning about the outage in the log:\n%s", logs.String())
	}
	rv.setDown(false)
	testutil.WaitFor(t, "the backlog to drain", 60*time.Second, func() bool {
		return len(rv.Frames()) >= 30 && r.a.queue.Stats().Pending < 3
	})
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	captured := r.a.metrics.captured.Get()
	st := rv.Frames()
	if uint64(len(st)) != captured {
		t.Fatalf("captured %d, stored %d", captured, len(st))
	}
	checkFrames(t, st, 160, 120)
	if !strings.Contains(logs.String(), "delivering again") {
		t.Errorf("no recovery line in the log")
	}
}

func TestStopWithLinkDownSpoolsAndNextRunDelivers(t *testing.T) {
	addr := freeAddr(t)
	spool := t.TempDir()
	c := testConfig(addr)
	c.Queue.SpoolDir = spool
	c.Shutdown.Timeout = 3 * time.Second
	r, _ := startAgent(t, c, Options{})
	testutil.WaitFor(t, "some frames captured", 30*time.Second, func() bool { return r.a.metrics.captured.Get() >= 15 })
	t0 := time.Now()
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	// A failed delivery ends the drain at once: no waiting out the timeout.
	if d := time.Since(t0); d > c.Shutdown.Timeout+5*time.Second {
		t.Errorf("stop took %v with shutdown.timeout %v", d, c.Shutdown.Timeout)
	}
	first := r.a.metrics.captured.Get()

	rv := startRecv(t, addr, nil)
	c.Trigger.Type = "signal" // capture nothing new: only the spool is sent
	r2, _ := startAgent(t, c, Options{})
	testutil.WaitFor(t, "the spooled frames", 30*time.Second, func() bool { return uint64(len(rv.Frames())) >= first })
	if err := r2.stop(t); err != nil {
		t.Fatal(err)
	}
	st := rv.Frames()
	if uint64(len(st)) != first {
		t.Fatalf("first run captured %d, receiver got %d", first, len(st))
	}
	checkFrames(t, storedFrames(t, st), 160, 120)
}

func TestPermanentRejectionIsDroppedAndCounted(t *testing.T) {
	rv := newMemRecv("127.0.0.1:1")
	rv.refuse = refuseOver(100)
	c := testConfig(rv.Addr)
	c.Trigger.FPS = 10
	r, logs := startAgent(t, c, rv.options(Options{}))
	testutil.WaitFor(t, "rejections", 30*time.Second, func() bool { return r.a.metrics.rejected.Get() >= 3 })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if n := len(rv.Frames()); n != 0 {
		t.Fatalf("receiver stored %d frames over its limit", n)
	}
	if got, want := r.a.metrics.rejected.Get(), r.a.metrics.captured.Get(); got != want {
		t.Fatalf("rejected %d of %d captured: each oversized frame is refused once, never retried", got, want)
	}
	if !strings.Contains(logs.String(), "refused the frame permanently") {
		t.Fatalf("no log line for the rejection")
	}
}

func TestHealthzAndMetrics(t *testing.T) {
	rv := newMemRecv("127.0.0.1:1")
	c := testConfig(rv.Addr)
	c.HTTP.Listen = "127.0.0.1:0"
	c.HTTP.HealthyWithin = time.Second
	c.Queue.MemoryFrames = 1000
	r, _ := startAgent(t, c, rv.options(Options{}))
	base := "http://" + r.a.Addr().String()
	testutil.WaitFor(t, "frames", 30*time.Second, func() bool { return len(rv.Frames()) >= 5 })

	code, body := get(t, base+"/healthz")
	if code != 200 {
		t.Fatalf("/healthz %d while delivering: %s", code, body)
	}
	var h Health
	if err := json.Unmarshal([]byte(body), &h); err != nil || !h.Healthy || h.Link != "up" || h.Camera != "up" {
		t.Fatalf("/healthz body %s (%v)", body, err)
	}
	_, m := get(t, base+"/metrics")
	for _, want := range []string{
		"framepush_frames_captured_total ", "framepush_frames_sent_total ", `framepush_frames_dropped_total{reason="rejected"} 0`,
		`framepush_frames_dropped_total{reason="expired"} 0`, "framepush_queue_frames ", "framepush_spool_bytes ",
		"framepush_reconnects_total ", "framepush_last_success_age_seconds ", "framepush_send_seconds_bucket{le=",
		"framepush_camera_up 1", "framepush_link_up 1", "framepush_frames_spooled_total ", "process_resident_memory_bytes ",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// The receiver goes away: frames pile up, and /healthz says so once
	// nothing was delivered for healthy_within.
	rv.setDown(true)
	testutil.WaitFor(t, "/healthz to turn unhealthy", 30*time.Second, func() bool {
		code, _ := get(t, base+"/healthz")
		return code == http.StatusServiceUnavailable
	})
	_, body = get(t, base+"/healthz")
	if !strings.Contains(body, "none delivered") {
		t.Fatalf("unhealthy /healthz does not say why: %s", body)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestReload(t *testing.T) {
	rv, rv2 := newMemRecv("127.0.0.1:1"), newMemRecv("127.0.0.1:2")
	byAddr := map[string]*memRecv{rv.Addr: rv, rv2.Addr: rv2}
	c := testConfig(rv.Addr)
	c.Trigger.FPS = 20
	var mu sync.Mutex
	next := c
	var nextErr error
	reload := func() (*config.Loaded, error) {
		mu.Lock()
		defer mu.Unlock()
		if nextErr != nil {
			return nil, nextErr
		}
		return &config.Loaded{Config: next}, nil
	}
	transport := func(cfg config.Config, log *slog.Logger) (Transport, error) {
		return byAddr[cfg.Server.Addresses[0]].transport(cfg, log)
	}
	r, logs := startAgent(t, c, Options{Reload: reload, NewTransport: transport})
	testutil.WaitFor(t, "frames", 30*time.Second, func() bool { return len(rv.Frames()) >= 3 })

	// A different receiver and a different name: the pipeline is rebuilt
	// and frames go to the new place, nothing lost on the way.
	mu.Lock()
	next.Server.Addresses = []string{rv2.Addr}
	mu.Unlock()
	r.reload <- struct{}{}
	testutil.WaitFor(t, "frames at the new receiver", 30*time.Second, func() bool { return len(rv2.Frames()) >= 3 })
	if r.a.Config().Server.Addresses[0] != rv2.Addr {
		t.Fatalf("config in effect not updated")
	}

	// Queue changes need a restart: refused, still running.
	mu.Lock()
	next.Queue.MemoryFrames = 99
	mu.Unlock()
	r.reload <- struct{}{}
	testutil.WaitFor(t, "the refusal", 10*time.Second, func() bool { return strings.Contains(logs.String(), "cannot change while running") })

	// An invalid file: refused, still running.
	mu.Lock()
	nextErr = errors.New("trigger.fps: 0 is out of range")
	mu.Unlock()
	r.reload <- struct{}{}
	testutil.WaitFor(t, "the refusal", 10*time.Second, func() bool { return strings.Contains(logs.String(), "new configuration is invalid") })
	n := len(rv2.Frames())
	testutil.WaitFor(t, "frames still flowing", 30*time.Second, func() bool { return len(rv2.Frames()) > n+3 })

	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if got, want := uint64(len(rv.Frames())+len(rv2.Frames())), r.a.metrics.captured.Get(); got != want {
		t.Fatalf("captured %d, the two receivers stored %d", want, got)
	}
	if r.a.metrics.reloads.Get() != 1 || r.a.metrics.reloadFails.Get() != 2 {
		t.Fatalf("reloads %d, failures %d; want 1 and 2", r.a.metrics.reloads.Get(), r.a.metrics.reloadFails.Get())
	}
}

func TestNotifiesSystemd(t *testing.T) {
	rv := newMemRecv("127.0.0.1:1")
	var mu sync.Mutex
	var states []string
	notify := func(s string) { mu.Lock(); states = append(states, s); mu.Unlock() }
	r, _ := startAgent(t, testConfig(rv.Addr), rv.options(Options{Notify: notify, Watchdog: 30 * time.Millisecond}))
	testutil.WaitFor(t, "watchdog pings", 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, s := range states {
			if s == "WATCHDOG=1" {
				n++
			}
		}
		return n >= 3
	})
	r.stop(t)
	mu.Lock()
	defer mu.Unlock()
	if !strings.HasPrefix(states[0], "READY=1") {
		t.Fatalf("first notification %q, want READY=1", states[0])
	}
	if last := states[len(states)-1]; !strings.HasPrefix(last, "STOPPING=1") {
		t.Fatalf("last notification %q, want STOPPING=1", last)
	}
}

func TestBadPartsFailClearly(t *testing.T) {
	c := testConfig("127.0.0.1:1")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c.HTTP.Listen = ln.Addr().String()
	if _, err := New(c, Options{}); err == nil || !strings.Contains(err.Error(), "http.listen") {
		t.Fatalf("busy HTTP port: %v", err)
	}

	c = testConfig("127.0.0.1:1")
	c.Trigger.Type = "gpio"
	c.Trigger.GPIO.Chip = "no-such-chip"
	off := 3
	c.Trigger.GPIO.Offset = &off
	a, err := New(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = a.Run(context.Background(), nil)
	// The error names the chip asked for, or says there are no chips at
	// all (a build machine).
	if err == nil || !strings.Contains(err.Error(), "trigger") ||
		!(strings.Contains(err.Error(), "no-such-chip") || strings.Contains(err.Error(), "no GPIO character devices")) {
		t.Fatalf("missing GPIO chip: %v", err)
	}
}

func TestFolderReplayEndsAfterDelivery(t *testing.T) {
	dir := t.TempDir()
	tp, err := testpattern.New(testpattern.Options{Width: 96, Height: 64})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 7 {
		f, err := tp.Capture(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("img-%03d.jpg", i)), f.Data, 0o644)
	}
	tp.Close()
	rv := startRecv(t, "127.0.0.1:0", nil)
	c := testConfig(rv.Addr)
	c.Source.Type, c.Source.Dir, c.Source.Loop = "dir", dir, false
	r, logs := startAgent(t, c, Options{})
	select {
	case err := <-r.done:
		r.done <- err
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the agent did not end after the last file")
	}
	st := rv.Frames()
	if len(st) != 7 {
		t.Fatalf("receiver stored %d of 7 files", len(st))
	}
	for i, s := range st {
		got, _ := os.ReadFile(s.Path)
		want, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("img-%03d.jpg", i)))
		if !bytes.Equal(got, want) {
			t.Fatalf("frame %d differs from img-%03d.jpg", i, i)
		}
	}
	if !strings.Contains(logs.String(), "source exhausted") {
		t.Fatalf("no log line saying why it ended")
	}
}

func TestMemoryGovernorFollowsTheQueue(t *testing.T) {
	if os.Getenv("GOMEMLIMIT") != "" || os.Getenv("GOGC") != "" {
		t.Skip("GOMEMLIMIT or GOGC set: the governor stays off by design")
	}
	rv := newMemRecv("127.0.0.1:1")
	rv.setDown(true) // nobody answers: frames stay in RAM
	c := testConfig(rv.Addr)
	c.Queue.MemoryFrames = 1000
	r, _ := startAgent(t, c, rv.options(Options{GovernMemory: true}))
	base := memoryBase(c.Source.Width, c.Source.Height)
	testutil.WaitFor(t, "the limit to follow the queued bytes", 30*time.Second, func() bool {
		mem := r.a.queue.Stats().MemoryBytes
		return mem > 100<<10 && r.a.memLimit.Load() >= base+mem
	})
	r.stop(t)
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Fatalf("memory limit %d left behind after the agent stopped", got)
	}
}

// With an event trigger the camera is opened at start, so a wrong device
// is reported before the first event.
func TestCameraOpenedAtStartWithEventTrigger(t *testing.T) {
	rv := newMemRecv("127.0.0.1:1")
	c := testConfig(rv.Addr)
	c.Trigger.Type = "signal"
	c.Source.Type = "dir"
	c.Source.Dir = filepath.Join(t.TempDir(), "missing")
	r, logs := startAgent(t, c, rv.options(Options{}))
	testutil.WaitFor(t, "the open failure in the log", 30*time.Second, func() bool {
		return strings.Contains(logs.String(), "capture device open failed") && strings.Contains(logs.String(), "missing")
	})
	if h := r.a.Health(); h.Camera != "down" {
		t.Fatalf("health camera %q, want down", h.Camera)
	}
	r.stop(t)
}
