//go:build linux

package command

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"framepush/capture"
	"framepush/frame"
	"framepush/internal/backoff"
	"framepush/internal/testutil"
)

// The command source is tested against real child processes: the test
// binary itself, re-executed with testHelperEnv naming what it should
// do. The switch sits in init, before the testing package runs anything.
const testHelperEnv = "FRAMEPUSH_CAPTURE_CMD_HELPER"

func init() {
	if mode := os.Getenv(testHelperEnv); mode != "" {
		os.Exit(testHelper(mode))
	}
}

// testHelper is the child's main. Modes:
//
//	frames      write $HELPER_N frames, exit with $HELPER_EXIT
//	stream      write a frame every 5 ms until killed
//	step        write one frame, then one per SIGUSR1
//	silent      write nothing, sleep until killed (at most two minutes)
//	grandchild  start a silent grandchild sharing stdout, log its pid, then
//	            stream, or write one frame and exit if $HELPER_LEADER_EXIT=1
//	ctl         read $HELPER_CTL: "fail" → complain on stderr and exit 1,
//	            otherwise stream
//	spam        flood stderr, then stream
//
// $HELPER_STDERR lines (split on |) go to stderr first; $HELPER_IGNORE_TERM=1
// ignores SIGTERM; $HELPER_NODHT=1 leaves the Huffman tables out of every
// frame, like UVC MJPEG; $HELPER_PREFIX_BAD=1 writes an undecodable frame
// before every good one.
func testHelper(mode string) int {
	env := func(k string) string { return os.Getenv("FRAMEPUSH_HELPER_" + k) }
	base := testBaseJPEG()
	if env("NODHT") == "1" {
		base = testStripDHT(base)
	}
	// A scan without a frame header: the splitter passes it, no decoder can.
	bad := []byte{0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0x12, 0x34, 0xFF, 0xD9}
	n := 0
	write := func() bool {
		n++
		out := testFrame(base, n)
		if env("PREFIX_BAD") == "1" {
			out = append(bad[:len(bad):len(bad)], out...)
		}
		_, err := os.Stdout.Write(out)
		return err == nil
	}
	stream := func() int {
		for write() {
			time.Sleep(5 * time.Millisecond)
		}
		return 0
	}
	for _, l := range strings.Split(env("STDERR"), "|") {
		if l != "" {
			fmt.Fprintln(os.Stderr, l)
		}
	}
	if env("IGNORE_TERM") == "1" {
		signal.Ignore(syscall.SIGTERM)
	}
	switch mode {
	case "frames":
		count, _ := strconv.Atoi(env("N"))
		for i := 0; i < count; i++ {
			write()
		}
		code, _ := strconv.Atoi(env("EXIT"))
		return code
	case "stream":
		return stream()
	case "step":
		usr := make(chan os.Signal, 64)
		signal.Notify(usr, syscall.SIGUSR1)
		write()
		for range usr {
			write()
		}
	case "silent":
		// Bounded, so that a failing test cannot leave it around for long.
		time.Sleep(2 * time.Minute)
	case "grandchild":
		exe, _ := os.Executable()
		gc := exec.Command(exe)
		gc.Env = append(os.Environ(), testHelperEnv+"=silent", "FRAMEPUSH_HELPER_STDERR=")
		gc.Stdout, gc.Stderr = os.Stdout, os.Stderr
		if err := gc.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "grandchild:", err)
			return 2
		}
		fmt.Fprintf(os.Stderr, "grandchild pid %d\n", gc.Process.Pid)
		if env("LEADER_EXIT") == "1" {
			write()
			return 0
		}
		return stream()
	case "ctl":
		b, _ := os.ReadFile(env("CTL"))
		if strings.TrimSpace(string(b)) == "fail" {
			fmt.Fprintln(os.Stderr, "ERROR: *** no cameras available ***")
			return 1
		}
		return stream()
	case "spam":
		os.Stderr.WriteString("progress 1\rprogress 2\rprogress 3\n")
		os.Stderr.WriteString(strings.Repeat("x", 3000) + "\n")
		for i := 0; i < 1000; i++ {
			fmt.Fprintf(os.Stderr, "spam line %d\n", i)
		}
		return stream()
	}
	return 3
}

func testBaseJPEG() []byte {
	img := image.NewGray(image.Rect(0, 0, 16, 16))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 7)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, nil); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// testStripDHT removes the Huffman table segments from a baseline JPEG.
func testStripDHT(b []byte) []byte {
	out := []byte{0xFF, 0xD8}
	p := 2
	for b[p+1] != 0xDA { // up to the first scan
		n := 2 + (int(b[p+2])<<8 | int(b[p+3]))
		if b[p+1] != 0xC4 {
			out = append(out, b[p:p+n]...)
		}
		p += n
	}
	return append(out, b[p:]...)
}

// testFrame numbers a copy of base with a COM segment "frame=n".
func testFrame(base []byte, n int) []byte {
	com := fmt.Sprintf("frame=%d", n)
	out := []byte{0xFF, 0xD8, 0xFF, 0xFE, byte((len(com) + 2) >> 8), byte(len(com) + 2)}
	out = append(out, com...)
	return append(out, base[2:]...)
}

var testFrameRe = regexp.MustCompile(`frame=(\d+)`)

// testFrameIndex checks that f decodes and returns the child's number
// for it.
func testFrameIndex(t *testing.T, f frame.Frame) int {
	t.Helper()
	if _, err := jpeg.Decode(bytes.NewReader(f.Data)); err != nil {
		t.Fatalf("frame %d does not decode: %v", f.Seq, err)
	}
	m := testFrameRe.FindSubmatch(f.Data)
	if m == nil {
		t.Fatalf("frame %d carries no frame number", f.Seq)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

func testOptions(t *testing.T, logs *testutil.Buffer, mode string, env ...string) Options {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Options{
		Command: []string{exe, "-test.run=^$"},
		// Under -race a process sleeps a second before exiting unless told not to.
		Env:          append([]string{testHelperEnv + "=" + mode, "GORACE=atexit_sleep_ms=0"}, env...),
		FrameTimeout: time.Minute, // tests that want a stall set their own
		KillGrace:    300 * time.Millisecond,
		Logger:       slog.New(slog.NewTextHandler(logs, nil)),
	}
}

// testSleeps records the Reopener's backoff delays instead of sleeping;
// then, if set, runs its hook.
type testSleeps struct {
	mu   sync.Mutex
	d    []time.Duration
	then func(n int)
}

func (s *testSleeps) sleep(_ context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	n, then := len(s.d), s.then
	s.mu.Unlock()
	if then != nil {
		then(n)
	}
	return nil
}

func (s *testSleeps) get() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

// testReopener wraps command sources made from opts in the Reopener the
// agent uses, with its jitter frozen and its sleeps recorded, and reports
// the source it opened last.
func testReopener(t *testing.T, opts Options, logs *testutil.Buffer, sleeps *testSleeps) (*capture.Reopener, func() *Source) {
	t.Helper()
	var mu sync.Mutex
	var last *Source
	r := capture.NewReopener(func(context.Context) (capture.Source, error) {
		c, err := New(opts)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		last = c
		mu.Unlock()
		return c, nil
	}, capture.ReopenOptions{
		Name:    "command:command.test",
		Backoff: backoff.Policy{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond, Multiplier: 2},
		Sleep:   sleeps.sleep,
		Rand:    func() float64 { return 1 },
	}, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { r.Close() })
	return r, func() *Source {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
}

// testEventually polls cond; it bounds a wait for another process, it
// does not measure speed.
func testEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testGone reports whether pid no longer runs (gone, or a zombie left
// for a reaper that is not ours).
func testGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z' || b[i+2] == 'X'
}

func testNew(t *testing.T, opts Options, h hooks) *Source {
	t.Helper()
	c, err := newSource(opts, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestCommandSourceDeliversOnlyFreshFrames(t *testing.T) {
	logs := &testutil.Buffer{}
	c := testNew(t, testOptions(t, logs, "step"), hooks{})
	// The child's first frame arrives while nobody asks: it must be dropped.
	testEventually(t, "the first frame", func() bool { return c.Stats().Frames >= 1 })
	pid := c.Stats().PID
	var prev int
	for round := 1; round <= 3; round++ {
		type result struct {
			f   frame.Frame
			err error
		}
		res := make(chan result, 1)
		go func() {
			f, err := c.Capture(context.Background())
			res <- result{f, err}
		}()
		var r result
	wait:
		for {
			// Keep asking the child for frames until one reaches the
			// Capture; how many it takes does not matter.
			syscall.Kill(pid, syscall.SIGUSR1)
			select {
			case r = <-res:
				break wait
			case <-time.After(20 * time.Millisecond):
			}
		}
		if r.err != nil {
			t.Fatal(r.err)
		}
		n := testFrameIndex(t, r.f)
		if n <= 1 || n <= prev {
			t.Fatalf("round %d got the child's frame %d after frame %d: stale", round, n, prev)
		}
		if r.f.Seq != uint64(round) || r.f.Format != "jpeg" || r.f.Source != "command:command.test" || r.f.Time.IsZero() {
			t.Fatalf("frame fields: seq %d format %q source %q time %v", r.f.Seq, r.f.Format, r.f.Source, r.f.Time)
		}
		prev = n
	}
	st := c.Stats()
	if st.Delivered != 3 || st.Discarded < 1 || st.Starts != 1 || st.Split.Frames != st.Frames {
		t.Fatalf("stats %+v", st)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if !testGone(pid) {
		t.Fatalf("child %d survived Close", pid)
	}
	if st := c.Stats(); st.PID != 0 || st.Exits != 1 {
		t.Fatalf("after Close: %+v", st)
	}
	if _, err := c.Capture(context.Background()); err == nil || !strings.Contains(err.Error(), "after close") {
		t.Fatalf("capture after close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestCommandSourceRestartsAfterExit: a dead child is reported, with its
// exit status and last stderr lines, by every later Capture; the source
// itself never restarts it (that is the Reopener's job, below).
func TestCommandSourceRestartsAfterExit(t *testing.T) {
	logs := &testutil.Buffer{}
	opts := testOptions(t, logs, "frames",
		"FRAMEPUSH_HELPER_N=2", "FRAMEPUSH_HELPER_EXIT=3", "FRAMEPUSH_HELPER_STDERR=camera warming up|giving up now")
	c := testNew(t, opts, hooks{})
	firstPID := c.Stats().PID

	var err error
	for i := 0; i < 3 && err == nil; i++ { // at most the child's two frames, then its death
		_, err = c.Capture(context.Background())
	}
	if !errors.Is(err, capture.ErrDeviceGone) {
		t.Fatalf("after the child exited: %v, want ErrDeviceGone", err)
	}
	for _, want := range []string{"exit status 3", "giving up now", fmt.Sprintf("pid %d", firstPID)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("death error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "restart") {
		t.Errorf("death error %q promises a restart the source does not do", err)
	}
	again, err2 := c.Capture(context.Background())
	if !errors.Is(err2, capture.ErrDeviceGone) || err2.Error() != err.Error() || again.Data != nil {
		t.Fatalf("capture after the death: %v, want the same death again", err2)
	}
	if st := c.Stats(); st.Starts != 1 || st.Exits != 1 || st.PID != 0 {
		t.Fatalf("stats after the death: %+v, want 1 start, 1 exit, no restart", st)
	}
	if !strings.Contains(logs.String(), fmt.Sprintf("msg=\"child stderr\" source=command:command.test pid=%d line=\"camera warming up\"", firstPID)) {
		t.Errorf("child stderr not logged line by line:\n%s", logs)
	}
	if strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("the source warned about the death itself; the Reopener does that once:\n%s", logs)
	}
}

// TestCommandSourceReopenerIsTheOneRestarter: wrapped in the agent's
// Reopener, every child death is one warning ("capture device lost, will
// retry") carrying the child's exit and the delay the Reopener then waits,
// with no second warning from the source and no second backoff.
func TestCommandSourceReopenerIsTheOneRestarter(t *testing.T) {
	logs := &testutil.Buffer{}
	opts := testOptions(t, logs, "frames",
		"FRAMEPUSH_HELPER_N=2", "FRAMEPUSH_HELPER_EXIT=3", "FRAMEPUSH_HELPER_STDERR=giving up now")
	sleeps := &testSleeps{}
	r, _ := testReopener(t, opts, logs, sleeps)
	for i := 0; i < 3; i++ { // two frames per child: at least one death on the way
		f, err := r.Capture(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		testFrameIndex(t, f)
	}
	st := r.Stats()
	if st.Failures == 0 || st.Opens != st.Failures+1 {
		t.Fatalf("reopener stats %+v: want one reopen per child death", st)
	}
	var warns, lost []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "level=WARN") {
			warns = append(warns, l)
		}
		if strings.Contains(l, `msg="capture device lost, will retry"`) {
			lost = append(lost, l)
		}
	}
	if uint64(len(lost)) != st.Failures || len(warns) > len(lost) {
		t.Fatalf("%d deaths, %d lost lines, %d warnings; want one line per death and no other warning:\n%s", st.Failures, len(lost), len(warns), logs)
	}
	got := sleeps.get()
	if uint64(len(got)) != st.Failures {
		t.Fatalf("%d backoff sleeps for %d deaths", len(got), st.Failures)
	}
	if !strings.Contains(lost[0], "exit status 3") || !strings.Contains(lost[0], "giving up now") ||
		!strings.Contains(lost[0], "retry_in="+got[0].String()) {
		t.Errorf("lost line %q lacks the exit, the stderr tail or retry_in=%v", lost[0], got[0])
	}
	for _, bad := range []string{"restart_in", "child ended", "device device"} {
		if strings.Contains(logs.String(), bad) {
			t.Errorf("log has %q:\n%s", bad, logs)
		}
	}
}

// TestCommandSourceBackoffGrowsCapsAndResets: the Reopener's schedule
// applies to dying children: it grows and caps while they fail, and a
// child that delivered starts it afresh.
func TestCommandSourceBackoffGrowsCapsAndResets(t *testing.T) {
	logs := &testutil.Buffer{}
	ctl := t.TempDir() + "/ctl"
	setMode := func(m string) {
		if err := os.WriteFile(ctl, []byte(m), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	setMode("fail")
	sleeps := &testSleeps{then: func(n int) {
		if n == 5 { // five failed children, then a camera
			setMode("ok")
		}
	}}
	r, last := testReopener(t, testOptions(t, logs, "ctl", "FRAMEPUSH_HELPER_CTL="+ctl), logs, sleeps)
	f, err := r.Capture(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	testFrameIndex(t, f)
	if st := r.Stats(); !strings.Contains(st.LastError, "no cameras available") || !strings.Contains(st.LastError, "exit status 1") {
		t.Fatalf("failing children: last error %q", st.LastError)
	}
	// A crash after success starts the schedule afresh.
	syscall.Kill(last().Stats().PID, syscall.SIGKILL)
	for i := 0; r.Stats().Failures < 6; i++ {
		if i == 1000 {
			t.Fatal("the killed child still delivers frames")
		}
		if _, err := r.Capture(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if st := r.Stats(); !strings.Contains(st.LastError, "signal: killed") {
		t.Fatalf("killed child: last error %q", st.LastError)
	}
	ms := time.Millisecond
	want := []time.Duration{10 * ms, 20 * ms, 40 * ms, 50 * ms, 50 * ms, 10 * ms}
	if got := sleeps.get(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("backoff sleeps %v, want %v", got, want)
	}
	if st := r.Stats(); st.Opens != 7 || st.Failures != 6 {
		t.Fatalf("stats %+v, want 7 starts and 6 exits", st)
	}
}

// TestCommandSourceCloseKillsProcessGroup: a child that ignores SIGTERM is
// killed after the grace period, and the grandchild it started dies with it.
func TestCommandSourceCloseKillsProcessGroup(t *testing.T) {
	logs := &testutil.Buffer{}
	c := testNew(t, testOptions(t, logs, "grandchild", "FRAMEPUSH_HELPER_IGNORE_TERM=1"), hooks{})
	if _, err := c.Capture(context.Background()); err != nil {
		t.Fatal(err)
	}
	leader := c.Stats().PID
	grandchild := testGrandchild(t, logs)
	if testGone(leader) || testGone(grandchild) {
		t.Fatal("child or grandchild gone before Close")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if !testGone(leader) {
		t.Fatalf("child %d that ignores SIGTERM survived Close", leader)
	}
	testEventually(t, "the grandchild to die", func() bool { return testGone(grandchild) })
}

func testGrandchild(t *testing.T, logs *testutil.Buffer) int {
	t.Helper()
	re := regexp.MustCompile(`line="grandchild pid (\d+)"`)
	var m []string
	testEventually(t, "the grandchild's pid in the log", func() bool {
		m = re.FindStringSubmatch(logs.String())
		return m != nil
	})
	pid, _ := strconv.Atoi(m[1])
	return pid
}

// TestCommandSourceLeaderExitClearsGroup: the child exits but leaves a
// grandchild holding its stdout open. Capture must still see the death,
// and the grandchild must not outlive it (it would keep the camera).
func TestCommandSourceLeaderExitClearsGroup(t *testing.T) {
	logs := &testutil.Buffer{}
	c := testNew(t, testOptions(t, logs, "grandchild", "FRAMEPUSH_HELPER_LEADER_EXIT=1"), hooks{})
	var err error
	for i := 0; i < 2 && err == nil; i++ {
		_, err = c.Capture(context.Background())
	}
	if !errors.Is(err, capture.ErrDeviceGone) || !strings.Contains(err.Error(), "ended (exit status 0)") {
		t.Fatalf("leader exit: %v", err)
	}
	grandchild := testGrandchild(t, logs)
	testEventually(t, "the orphaned grandchild to die", func() bool { return testGone(grandchild) })
}

// TestCommandSourceRepairsAndRejects: frames without Huffman tables are
// repaired, undecodable ones skipped while Capture keeps waiting.
func TestCommandSourceRepairsAndRejects(t *testing.T) {
	base := testBaseJPEG()
	if _, err := jpeg.Decode(bytes.NewReader(testStripDHT(base))); err == nil {
		t.Fatal("a JPEG without DHT decodes here; the test would prove nothing")
	}
	logs := &testutil.Buffer{}
	c := testNew(t, testOptions(t, logs, "stream", "FRAMEPUSH_HELPER_NODHT=1", "FRAMEPUSH_HELPER_PREFIX_BAD=1"),
		hooks{})
	for i := 0; i < 200 && c.Stats().Rejected == 0; i++ {
		f, err := c.Capture(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		testFrameIndex(t, f) // decodes: tables inserted
	}
	st := c.Stats()
	if st.Rejected == 0 {
		t.Fatalf("no undecodable frame was ever rejected: %+v", st)
	}
	if !strings.Contains(logs.String(), "before any frame header (SOF)") {
		t.Errorf("rejection reason not logged:\n%s", logs)
	}
}

func TestCommandSourceStall(t *testing.T) {
	logs := &testutil.Buffer{}
	opts := testOptions(t, logs, "silent")
	opts.FrameTimeout = 200 * time.Millisecond
	c := testNew(t, opts, hooks{})
	pid := c.Stats().PID
	_, err := c.Capture(context.Background())
	if !errors.Is(err, capture.ErrDeviceGone) || !strings.Contains(err.Error(), "stalled: no frame within 200ms") {
		t.Fatalf("silent child: %v", err)
	}
	if !testGone(pid) {
		t.Fatalf("stalled child %d still runs", pid)
	}
}

func TestCommandSourceCancel(t *testing.T) {
	logs := &testutil.Buffer{}
	c := testNew(t, testOptions(t, logs, "silent"), hooks{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Capture(ctx)
		done <- err
	}()
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("cancelled capture: %v", err)
	}
	if st := c.Stats(); st.Exits != 0 || st.PID == 0 {
		t.Fatalf("a cancelled capture must leave the child running: %+v", st)
	}
}

func TestCommandSourceStderrIsBounded(t *testing.T) {
	logs := &testutil.Buffer{}
	c := testNew(t, testOptions(t, logs, "spam"), hooks{})
	if _, err := c.Capture(context.Background()); err != nil {
		t.Fatal(err)
	}
	testEventually(t, "all stderr lines", func() bool {
		st := c.Stats()
		return st.StderrLines+st.StderrDropped >= 1004
	})
	st := c.Stats()
	if st.StderrDropped == 0 || st.StderrLines == 0 {
		t.Fatalf("1004 stderr lines at once: %d logged, %d dropped; want the rate limit to act", st.StderrLines, st.StderrDropped)
	}
	out := logs.String()
	for _, want := range []string{`line="progress 1"`, `line="progress 2"`, `line="progress 3"`,
		`line="` + strings.Repeat("x", stderrLineMax) + ` [cut]"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %.80q", want)
		}
	}
	if strings.Contains(out, strings.Repeat("x", stderrLineMax+1)) {
		t.Error("a stderr line longer than the limit was logged whole")
	}
}

func TestCommandSourceOptions(t *testing.T) {
	exe, _ := os.Executable()
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{}, "no command given"},
		{Options{Command: []string{"/nonexistent/rpicam-vid"}}, `cannot run "/nonexistent/rpicam-vid"`},
		{Options{Command: []string{"framepush-no-such-program"}}, "not found in $PATH"},
		{Options{Command: []string{exe}, FrameTimeout: -1}, "frame timeout -1ns is negative"},
		{Options{Command: []string{exe}, KillGrace: -time.Second}, "kill grace -1s is negative"},
		{Options{Command: []string{exe}, MaxFrameSize: -5}, "max frame size -5 is negative"},
		{Options{Command: []string{exe}, Env: []string{"NOEQUALS"}}, `environment entry "NOEQUALS" is not KEY=value`},
	} {
		c, err := New(tc.opts)
		if err == nil {
			c.Close()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want it to mention %q", tc.opts, err, tc.want)
		}
	}
}
