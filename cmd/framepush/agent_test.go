package main

// End-to-end tests of the built binaries: the agent (framepush run) and
// the receiver (framerecv) as real processes talking real TCP on loopback
// and writing real files, stopped with real signals.

import (
	"bytes"
	"fmt"
	"framepush/internal/testutil"
	"image/jpeg"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// bins builds framepush and framerecv once per test run.
func bins(t *testing.T) (agent, recv string) {
	t.Helper()
	return testutil.Binary(t, "framepush"), testutil.Binary(t, "framerecv")
}

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.RemoveBinaries()
	os.Exit(code)
}

// proc is a started binary with its combined output captured.
type proc struct {
	cmd  *exec.Cmd
	out  *testutil.Buffer
	done chan struct{}
}

func start(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), out: &testutil.Buffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.Env = append(os.Environ(), "FRAMEPUSH_CONFIG=")
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(bin), p.out.String())
		}
	})
	return p
}

// signal sends sig and waits for the exit status.
func (p *proc) signal(t *testing.T, sig syscall.Signal, within time.Duration) int {
	t.Helper()
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("%s did not exit within %v of %v; output:\n%s", p.cmd.Path, within, sig, p.out.String())
	}
	return p.cmd.ProcessState.ExitCode()
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startRecv(t *testing.T, bin, addr, dir string) *proc {
	t.Helper()
	p := start(t, bin, "--listen", addr, "--dir", dir, "--fsync=false", "--min-free", "0", "--log-level", "warn")
	testutil.WaitFor(t, "framerecv listening on "+addr, 30*time.Second, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return p
}

// stored lists the final frame files under dir in name order (which is
// arrival order within a client and date folder).
func stored(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasPrefix(d.Name(), ".") {
			files = append(files, p)
		}
		return nil
	})
	sort.Strings(files)
	return files
}

// checkJPEGs decodes every file; each must be a w×h JPEG.
func checkJPEGs(t *testing.T, files []string, w, h int) {
	t.Helper()
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		img, err := jpeg.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s does not decode: %v", f, err)
		}
		if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
			t.Fatalf("%s is %dx%d, want %dx%d", f, b.Dx(), b.Dy(), w, h)
		}
	}
}

var stoppedRE = regexp.MustCompile(`msg=stopped captured=(\d+) delivered=(\d+) left_in_spool=(\d+) dropped=(\d+)`)

// stoppedCounts reads the agent's final log line.
func stoppedCounts(t *testing.T, out string) (captured, delivered, spooled, dropped int) {
	t.Helper()
	m := stoppedRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no final 'stopped' line in the agent's log:\n%s", out)
	}
	n := func(s string) int { v, _ := strconv.Atoi(s); return v }
	return n(m[1]), n(m[2]), n(m[3]), n(m[4])
}

func agentArgs(addr string, extra ...string) []string {
	args := []string{"run",
		"--set", "server.addresses=" + addr,
		"--set", "source.width=320", "--set", "source.height=240",
		"--set", "trigger.fps=20",
		"--set", "http.listen=",
		"--set", "server.backoff.initial=50ms", "--set", "server.backoff.max=500ms",
		"--set", "queue.fsync=false",
	}
	return append(args, extra...)
}

func TestRunToReceiverEveryFrameDecodes(t *testing.T) {
	agentBin, recvBin := bins(t)
	addr, dir := freePort(t), t.TempDir()
	startRecv(t, recvBin, addr, dir)
	a := start(t, agentBin, agentArgs(addr)...)
	testutil.WaitFor(t, "20 frames on disk", 60*time.Second, func() bool { return len(stored(t, dir)) >= 20 })
	if rc := a.signal(t, syscall.SIGTERM, 30*time.Second); rc != 0 {
		t.Fatalf("agent exit status %d after SIGTERM, want 0", rc)
	}
	captured, delivered, _, dropped := stoppedCounts(t, a.out.String())
	files := stored(t, dir)
	if captured != len(files) || delivered != captured || dropped != 0 {
		t.Fatalf("captured %d, delivered %d, dropped %d, files %d: SIGTERM must drain everything", captured, delivered, dropped, len(files))
	}
	checkJPEGs(t, files, 320, 240)
}

func TestReceiverRestartLosesNothing(t *testing.T) {
	agentBin, recvBin := bins(t)
	addr, dir := freePort(t), t.TempDir()
	r := startRecv(t, recvBin, addr, dir)
	a := start(t, agentBin, agentArgs(addr, "--set", "queue.spool_dir="+t.TempDir(), "--set", "queue.memory_frames=4")...)
	testutil.WaitFor(t, "frames on disk", 60*time.Second, func() bool { return len(stored(t, dir)) >= 5 })
	if rc := r.signal(t, syscall.SIGTERM, 30*time.Second); rc != 0 {
		t.Fatalf("framerecv exit %d", rc)
	}
	before := len(stored(t, dir))
	time.Sleep(2 * time.Second) // the agent captures ~40 frames meanwhile, into the spool
	startRecv(t, recvBin, addr, dir)
	testutil.WaitFor(t, "the backlog", 60*time.Second, func() bool { return len(stored(t, dir)) >= before+40 })
	if rc := a.signal(t, syscall.SIGTERM, 30*time.Second); rc != 0 {
		t.Fatalf("agent exit %d", rc)
	}
	captured, _, spooled, dropped := stoppedCounts(t, a.out.String())
	files := stored(t, dir)
	if spooled != 0 || dropped != 0 || len(files) != captured {
		t.Fatalf("captured %d, files %d, left in spool %d, dropped %d", captured, len(files), spooled, dropped)
	}
	checkJPEGs(t, files, 320, 240)
	if !strings.Contains(a.out.String(), "cannot deliver frames") || !strings.Contains(a.out.String(), "delivering again") {
		t.Errorf("the agent's log does not tell the outage and the recovery")
	}
}

// spoolFiles counts complete spool files (not temporaries).
func spoolFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".frame") {
			n++
		}
	}
	return n
}

func TestKilledAgentDeliversSpoolInOrderAfterRestart(t *testing.T) {
	agentBin, recvBin := bins(t)
	addr, dir, spool := freePort(t), t.TempDir(), t.TempDir()
	// No receiver: every frame goes to the spool, written and fsynced
	// before Put returns (always_spool), so SIGKILL loses none of them.
	a := start(t, agentBin, agentArgs(addr, "--set", "queue.spool_dir="+spool, "--set", "queue.always_spool=true", "--set", "queue.fsync=true")...)
	testutil.WaitFor(t, "30 frames in the spool", 60*time.Second, func() bool { return spoolFiles(t, spool) >= 30 })
	a.signal(t, syscall.SIGKILL, 10*time.Second)
	spooled := snapshotSpool(t, spool)
	inSpool := len(spooled)

	startRecv(t, recvBin, addr, dir)
	b := start(t, agentBin, agentArgs(addr, "--set", "queue.spool_dir="+spool, "--set", "trigger.type=signal")...)
	testutil.WaitFor(t, "the spooled frames", 60*time.Second, func() bool { return len(stored(t, dir)) >= inSpool })
	if rc := b.signal(t, syscall.SIGTERM, 30*time.Second); rc != 0 {
		t.Fatalf("agent exit %d", rc)
	}
	files := stored(t, dir)
	if len(files) != inSpool {
		t.Fatalf("%d frames in the spool at the kill, %d delivered after the restart", inSpool, len(files))
	}
	if !strings.Contains(b.out.String(), "frames recovered from the spool") {
		t.Errorf("the restarted agent does not log the recovery")
	}
	checkJPEGs(t, files, 320, 240)
	checkCaptureOrder(t, files, spooled)
}

// snapshotSpool reads the complete spool files in name order, which is
// capture order (<run>-<counter>-<time>.frame).
func snapshotSpool(t *testing.T, dir string) [][]byte {
	t.Helper()
	ents, err := os.ReadDir(dir) // sorted by name
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".frame") {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
	}
	return out
}

// checkCaptureOrder: the i-th frame received must be the payload of the
// i-th spool file (a spool file is a header followed by the frame bytes).
func checkCaptureOrder(t *testing.T, files []string, spooled [][]byte) {
	t.Helper()
	for i, f := range files {
		got, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasSuffix(spooled[i], got) || len(got) < 100 {
			t.Fatalf("received frame %d (%s, %d bytes) is not spool file %d: out of capture order", i, f, len(got), i)
		}
	}
}

func TestSpoolLimitAndDropPolicyAreExact(t *testing.T) {
	agentBin, _ := bins(t)
	addr, spool := freePort(t), t.TempDir()
	// Receiver down; 4 in RAM + 10 in the spool; drop oldest. Everything
	// captured is either still queued or counted as dropped.
	a := start(t, agentBin, agentArgs(addr, "--set", "queue.spool_dir="+spool, "--set", "queue.memory_frames=4",
		"--set", "queue.spool_max_frames=10", "--set", "queue.drop=oldest", "--set", "shutdown.timeout=2s")...)
	testutil.WaitFor(t, "drops", 60*time.Second, func() bool { return strings.Contains(a.out.String(), "dropped") && spoolFiles(t, spool) >= 10 })
	time.Sleep(time.Second)
	if rc := a.signal(t, syscall.SIGTERM, 30*time.Second); rc != 0 {
		t.Fatalf("agent exit %d", rc)
	}
	captured, delivered, left, dropped := stoppedCounts(t, a.out.String())
	if delivered != 0 || left != 10 || captured != left+dropped {
		t.Fatalf("captured %d = left in spool %d + dropped %d? (delivered %d)", captured, left, dropped, delivered)
	}
	if got := spoolFiles(t, spool); got != 10 {
		t.Fatalf("%d files in the spool, limit 10", got)
	}
}

func TestConfigErrorsAreClear(t *testing.T) {
	agentBin, _ := bins(t)
	dir := t.TempDir()
	cases := []struct {
		body  string
		wants []string // besides file:line
		line  int
	}{
		{"source:\n  type: testpattern\n  widht: 640\n", []string{`unknown key "widht"`, "width"}, 3},
		{"trigger:\n  fps: -3\n", []string{"trigger.fps"}, 2},
		{"trigger:\n  type: gpio\n", []string{"trigger.gpio"}, 2},
		{"server:\n  mode: fast\n", []string{"server.mode", "auto", "seed"}, 2},
	}
	for i, c := range cases {
		f := filepath.Join(dir, fmt.Sprintf("bad%d.yaml", i))
		os.WriteFile(f, []byte(c.body), 0o644)
		for _, args := range [][]string{{"run", "--config", f}, {"config", "check", f}} {
			cmd := exec.Command(agentBin, args...)
			cmd.Env = append(os.Environ(), "FRAMEPUSH_CONFIG=")
			out, _ := cmd.CombinedOutput()
			s := string(out)
			if cmd.ProcessState.ExitCode() == 0 {
				t.Fatalf("%v accepted a bad file:\n%s", args, s)
			}
			for _, want := range append([]string{fmt.Sprintf("%s:%d", f, c.line)}, c.wants...) {
				if !strings.Contains(s, want) {
					t.Errorf("%v: the error does not mention %q:\n%s", args, want, s)
				}
			}
		}
	}
}

func TestHelpTeaches(t *testing.T) {
	agentBin, _ := bins(t)
	for _, args := range [][]string{{"--help"}, {"run", "--help"}, {"send", "--help"}, {"devices", "--help"}, {"config", "--help"}} {
		cmd := exec.Command(agentBin, args...)
		out, _ := cmd.CombinedOutput()
		if cmd.ProcessState.ExitCode() != 0 {
			t.Errorf("%v exited %d", args, cmd.ProcessState.ExitCode())
		}
		if !strings.Contains(string(out), "Example") && !strings.Contains(string(out), "example") {
			t.Errorf("%v has no examples:\n%s", args, out)
		}
	}
	out, err := exec.Command(agentBin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "framepush ") {
		t.Fatalf("version: %v %q", err, out)
	}
	cmd := exec.Command(agentBin, "bogus")
	if out, _ := cmd.CombinedOutput(); cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "unknown command") {
		t.Fatalf("unknown command: %d %s", cmd.ProcessState.ExitCode(), out)
	}
}

func TestDevicesRuns(t *testing.T) {
	agentBin, _ := bins(t)
	out, err := exec.Command(agentBin, "devices").CombinedOutput()
	if err != nil {
		t.Fatalf("devices: %v\n%s", err, out)
	}
	for _, want := range []string{"Cameras (V4L2):", "GPIO chips:"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("devices output lacks %q:\n%s", want, out)
		}
	}
}

func TestSignalTriggerAndStraySIGUSR1(t *testing.T) {
	agentBin, recvBin := bins(t)
	addr, dir := freePort(t), t.TempDir()
	startRecv(t, recvBin, addr, dir)

	// Without a signal trigger, SIGUSR1 must not kill the agent.
	a := start(t, agentBin, agentArgs(addr, "--set", "trigger.fps=2")...)
	testutil.WaitFor(t, "a frame", 60*time.Second, func() bool { return len(stored(t, dir)) >= 1 })
	a.cmd.Process.Signal(syscall.SIGUSR1)
	testutil.WaitFor(t, "the warning", 30*time.Second, func() bool { return strings.Contains(a.out.String(), "SIGUSR1 ignored") })
	if rc := a.signal(t, syscall.SIGTERM, 30*time.Second); rc != 0 {
		t.Fatalf("agent exit %d", rc)
	}

	// With trigger.type signal, each SIGUSR1 is one frame, none otherwise.
	dir2 := t.TempDir()
	addr2 := freePort(t)
	startRecv(t, recvBin, addr2, dir2)
	b := start(t, agentBin, agentArgs(addr2, "--set", "trigger.type=signal")...)
	testutil.WaitFor(t, "the agent running", 30*time.Second, func() bool { return strings.Contains(b.out.String(), "msg=running") })
	time.Sleep(500 * time.Millisecond)
	if n := len(stored(t, dir2)); n != 0 {
		t.Fatalf("%d frames before any signal", n)
	}
	for i := 1; i <= 3; i++ {
		b.cmd.Process.Signal(syscall.SIGUSR1)
		testutil.WaitFor(t, fmt.Sprintf("frame %d", i), 30*time.Second, func() bool { return len(stored(t, dir2)) >= i })
	}
	if rc := b.signal(t, syscall.SIGTERM, 30*time.Second); rc != 0 {
		t.Fatalf("agent exit %d", rc)
	}
	if n := len(stored(t, dir2)); n != 3 {
		t.Fatalf("%d frames for 3 signals", n)
	}
}

// A camera that stays away longer than source.reopen.give_up ends the
// agent with status 1, so that systemd restarts it; what it had queued is
// kept or counted like on any stop.
func TestGiveUpExitsNonZero(t *testing.T) {
	agentBin, _ := bins(t)
	missing := filepath.Join(t.TempDir(), "no-such-folder")
	a := start(t, agentBin, agentArgs(freePort(t), "--set", "source.type=dir", "--set", "source.dir="+missing,
		"--set", "source.reopen.initial=100ms", "--set", "source.reopen.max=200ms", "--set", "source.reopen.give_up=2s")...)
	select {
	case <-a.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("the agent did not give up; output:\n%s", a.out.String())
	}
	if rc := a.cmd.ProcessState.ExitCode(); rc != 1 {
		t.Fatalf("exit status %d, want 1; output:\n%s", rc, a.out.String())
	}
	out := a.out.String()
	for _, want := range []string{"gave up reopening the capture device", "no-such-folder", "systemd restarts the agent"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// SIGHUP reloads the file: a new server takes the frames from then on; an
// invalid file is refused and the agent runs on.
func TestSIGHUPReloadsTheFile(t *testing.T) {
	agentBin, recvBin := bins(t)
	addr1, dir1 := freePort(t), t.TempDir()
	addr2, dir2 := freePort(t), t.TempDir()
	startRecv(t, recvBin, addr1, dir1)
	startRecv(t, recvBin, addr2, dir2)
	cfg := filepath.Join(t.TempDir(), "framepush.yaml")
	write := func(body string) {
		if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	base := "source:\n  width: 160\n  height: 120\ntrigger:\n  fps: 10\nhttp:\n  listen: \"\"\nserver:\n  addresses: [\"%s\"]\n"
	write(fmt.Sprintf(base, addr1))
	a := start(t, agentBin, "run", "--config", cfg)
	testutil.WaitFor(t, "frames at the first receiver", 60*time.Second, func() bool { return len(stored(t, dir1)) >= 3 })

	write(fmt.Sprintf(base, addr2))
	a.cmd.Process.Signal(syscall.SIGHUP)
	testutil.WaitFor(t, "frames at the second receiver", 60*time.Second, func() bool { return len(stored(t, dir2)) >= 3 })

	write("trigger:\n  fps: -1\n")
	a.cmd.Process.Signal(syscall.SIGHUP)
	testutil.WaitFor(t, "the refusal", 30*time.Second, func() bool { return strings.Contains(a.out.String(), "reload refused") })
	n := len(stored(t, dir2))
	testutil.WaitFor(t, "frames still flowing", 60*time.Second, func() bool { return len(stored(t, dir2)) >= n+3 })

	if rc := a.signal(t, syscall.SIGTERM, 30*time.Second); rc != 0 {
		t.Fatalf("agent exit %d", rc)
	}
	captured, delivered, _, dropped := stoppedCounts(t, a.out.String())
	if got := len(stored(t, dir1)) + len(stored(t, dir2)); got != captured || delivered != captured || dropped != 0 {
		t.Fatalf("captured %d, delivered %d, dropped %d, stored %d", captured, delivered, dropped, got)
	}
}
