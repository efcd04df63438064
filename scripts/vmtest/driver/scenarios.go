package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// env is what scenarios share: the guest, the board's GPIO, the receiver
// and the tap in front of it.
type env struct {
	g        *guest
	v        *vm
	tap      *tap
	recv     *receiver
	work     string
	server   string // the tap as the guest reaches it: 10.0.2.2:port
	bins     map[string]bool
	clockRTT time.Duration // bound on the guest clock's error after syncing
	logf     func(format string, args ...any)
	agent    *agentRun // the last agent started
}

// cleanup leaves the board as the next scenario expects it after one that
// failed half-way: no agent running, the camera loaded, the receiver up.
func (e *env) cleanup() {
	if a := e.agent; a != nil && !a.stopped {
		e.agent = nil
		if exited, _, err := e.g.wait(a.pid, 0); err == nil && !exited {
			e.logf("%s: still running after its scenario; stopping it", a.name)
			if err := a.stop(); err != nil {
				e.logf("%s: %v", a.name, err)
			}
		}
	}
	if out, rc, err := e.g.sh("[ -e /dev/video0 ] || modprobe vivid", 30*time.Second); err != nil || rc != 0 {
		e.logf("cleanup: reloading vivid: %v %s", err, out)
	}
	if e.recv != nil && e.recv.cmd == nil {
		if err := e.recv.start(); err != nil {
			e.logf("cleanup: %v", err)
		}
	}
	if e.tap != nil {
		if err := e.tap.resume(); err != nil {
			e.logf("cleanup: %v", err)
		}
	}
}

// scenario is one check run inside the booted VM.
type scenario struct {
	key   string   // name for -scenarios
	title string   // what it proves (printed in the summary)
	guest []string // guest binaries it needs (/vmtest/bin/NAME)
	recv  bool     // needs framerecv on the host
	run   func(e *env) (*report, error)
}

// report is what a passing scenario tells the summary.
type report struct {
	lines []string
}

func (r *report) add(format string, args ...any) {
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
}

// problems collects check failures so a scenario reports all of them.
type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }
func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	if len(p) > 25 {
		p = append(p[:25:25], fmt.Sprintf("... and %d more", len(p)-25))
	}
	return errors.New(strings.Join(p, "\n"))
}

// The frame size every scenario asks of vivid.
const width, height = 640, 480

func allScenarios() []*scenario {
	return []*scenario{
		{key: "devices", title: "6: framepush devices lists vivid's formats and the PL061 chip (arm64, armv7)",
			guest: []string{"framepush-arm64"}, run: scenarioDevices},
		{key: "continuous", title: "1: continuous vivid 640x480 YUYV to JPEG, expected frame count (arm64)",
			guest: []string{"framepush-arm64"}, recv: true,
			run: func(e *env) (*report, error) {
				return scenarioContinuous(e, "framepush-arm64", "s1-continuous", 5, 20*time.Second)
			}},
		{key: "gpio", title: "2: PL061 GPIO pulses give bursts with pre-trigger frames, none while idle (arm64)",
			guest: []string{"framepush-arm64"}, recv: true, run: scenarioGPIO},
		{key: "unplug", title: "3: camera unplugged while streaming (unbind + rmmod vivid), retry without spinning, modprobe, resume, nothing lost (arm64)",
			guest: []string{"framepush-arm64"}, recv: true, run: scenarioUnplug},
		{key: "outage", title: "4: receiver down 20 s, the frames captured meanwhile arrive from the spool (arm64)",
			guest: []string{"framepush-arm64"}, recv: true, run: scenarioOutage},
		{key: "armv7", title: "5: the armv7 (GOARM=7, 32-bit) build runs scenario 1",
			guest: []string{"framepush-armv7"}, recv: true,
			run: func(e *env) (*report, error) {
				// 3 fps: TCG emulates 32-bit ARM several times slower than
				// the 64-bit build; at 5 fps the YUYV→JPEG encoding alone
				// took 90% of an emulated core, so the VM, not the agent,
				// set the rate. A real Pi 2/3 runs this build far faster.
				return scenarioContinuous(e, "framepush-armv7", "s5-armv7", 3, 20*time.Second)
			}},
		{key: "probe", title: "kernel paths with the probe: vivid YUYV capture, PL061 edges, unplug while streaming (arm64, armv7)",
			guest: []string{"probe-arm64", "probe-armv7"}, run: scenarioProbe},
	}
}

// scenarioDevices: `framepush devices` must show the camera with its YUYV
// format and the GPIO chip by label, in both builds.
func scenarioDevices(e *env) (*report, error) {
	var p problems
	r := &report{}
	for _, bin := range []string{"framepush-arm64", "framepush-armv7"} {
		if !e.bins[bin] {
			continue
		}
		out, rc, err := e.g.sh("/vmtest/bin/"+bin+" devices", 60*time.Second)
		if err != nil {
			return nil, err
		}
		os.WriteFile(filepath.Join(e.work, "devices-"+bin+".txt"), []byte(out), 0o644)
		if rc != 0 {
			p.add("%s devices exited %d:\n%s", bin, rc, out)
			continue
		}
		low := strings.ToLower(out)
		for _, want := range []string{"/dev/video0", "vivid", "yuyv", "controls (source.controls)", "brightness (int", "9030000.pl061", "/dev/gpiochip0"} {
			if !strings.Contains(low, want) {
				p.add("%s devices does not mention %q; it printed:\n%s", bin, want, out)
			}
		}
		ver, rc, err := e.g.sh("/vmtest/bin/"+bin+" version", 30*time.Second)
		if err != nil {
			return nil, err
		}
		if rc != 0 || !strings.Contains(ver, "framepush") {
			p.add("%s version exited %d: %q", bin, rc, ver)
		}
		r.add("%s: %s; devices output in %s", bin, strings.TrimSpace(ver), filepath.Join(e.work, "devices-"+bin+".txt"))
	}
	return r, p.err()
}

// scenarioContinuous runs the agent at fps for window and checks that the
// expected number of frames arrived, every one a 640x480 JPEG, in capture
// order, none lost; it reports the agent's CPU and memory.
func scenarioContinuous(e *env, bin, name string, fps float64, window time.Duration) (*report, error) {
	a, err := e.startAgent(bin, name, "continuous", map[string]any{"FPS": fps})
	if err != nil {
		return nil, err
	}
	if _, ok := e.tap.waitFor(name, 60*time.Second, atLeast(1)); !ok {
		a.stop()
		return nil, fmt.Errorf("no frame arrived within 60 s of starting the agent; its log:\n%s", a.tail(30))
	}
	st0, err := e.g.stats(a.pid)
	if err != nil {
		return nil, err
	}
	time.Sleep(window)
	if err := a.running(); err != nil {
		return nil, err
	}
	st1, err := e.g.stats(a.pid)
	if err != nil {
		return nil, err
	}
	if err := a.stop(); err != nil {
		return nil, err
	}
	fs, probs := verify(e.recv, e.tap, name, width, height)
	p := problems(probs)
	r := &report{}
	n := len(fs.Recs)
	if n < 2 {
		p.add("only %d frame(s) arrived", n)
		return r, p.err()
	}
	span := fs.Recs[n-1].Meta.Time.Sub(fs.Recs[0].Meta.Time)
	want := fps*span.Seconds() + 1
	tol := math.Max(2, 0.1*want)
	if math.Abs(float64(n)-want) > tol {
		p.add("%d frames captured over %.1f s; at %g fps that should be %.0f ± %.0f", n, span.Seconds(), fps, want, tol)
	}
	if span < window*8/10 {
		p.add("frames span only %.1f s of a %.0f s run", span.Seconds(), window.Seconds())
	}
	gap, at := maxGap(fs.Recs)
	if limit := time.Duration(math.Max(1, 4/fps) * float64(time.Second)); gap > limit {
		p.add("capture stalled for %v before frame id=%s (limit %v)", gap.Round(time.Millisecond), at, limit)
	}
	cpu := st1.CPU - st0.CPU
	wall := st1.Taken.Sub(st0.Taken)
	r.add("%d frames over %.1f s = %.2f fps (want %g), all %dx%d JPEG, capture order kept, ids consecutive",
		n, span.Seconds(), float64(n-1)/span.Seconds(), fps, width, height)
	r.add("agent %s: CPU %.0f%% of one emulated core (%v in %.1f s), RSS %s, peak RSS %s",
		bin, 100*cpu.Seconds()/wall.Seconds(), cpu, wall.Seconds(), kib(st1.RSS), kib(st1.HWM))
	r.add("median JPEG %s, SIZE line to GOT IMAGE median %v", kib(medianSize(fs.Recs)/1024), medianAck(fs.Recs))
	return r, p.err()
}

// scenarioGPIO pulses the PL061 line K times; each pulse must yield one
// burst of Pre frames from before the edge and N frames after it, and
// nothing may arrive while the line is quiet.
func scenarioGPIO(e *env) (*report, error) {
	const (
		name   = "s2-gpio"
		bin    = "framepush-arm64"
		pulses = 4
		frames = 3
		pre    = 2
		preFPS = 2
		apart  = 3 * time.Second // lets the pre-trigger ring refill between bursts
	)
	per := frames + pre
	a, err := e.startAgent(bin, name, "gpio", map[string]any{"Frames": frames, "Pre": pre, "PreFPS": preFPS})
	if err != nil {
		return nil, err
	}
	if err := waitLineRequested(e, a, "9030000.pl061", 3, 60*time.Second); err != nil {
		a.stop()
		return nil, err
	}
	// Idle: the line is armed and the pre-trigger ring fills, but nothing
	// may be sent.
	time.Sleep(4 * time.Second)
	var p problems
	idle := len(e.tap.acks(name))
	if idle != 0 {
		p.add("%d frame(s) arrived while the line was idle", idle)
	}
	var edges []time.Time
	for i := 0; i < pulses; i++ {
		t, err := e.v.pulse()
		if err != nil {
			a.stop()
			return nil, err
		}
		edges = append(edges, t)
		e.tap.waitFor(name, 15*time.Second, atLeast(idle+(i+1)*per))
		if d := time.Until(t.Add(apart)); d > 0 {
			time.Sleep(d)
		}
	}
	// Quiet again: no frames after the last burst.
	time.Sleep(3 * time.Second)
	if err := a.running(); err != nil {
		return nil, err
	}
	if err := a.stop(); err != nil {
		return nil, err
	}
	fs, probs := verify(e.recv, e.tap, name, width, height)
	p = append(p, probs...)
	if len(fs.Recs) != pulses*per {
		p.add("%d frames arrived for %d pulses; want %d (%d pre-trigger + %d per pulse)", len(fs.Recs), pulses, pulses*per, pre, frames)
	}
	// Assign frames to the pulse before their acknowledgement.
	bursts := make([][]frameRec, pulses)
	for _, f := range fs.Recs {
		i := sort.Search(len(edges), func(i int) bool { return edges[i].After(f.AckAt) }) - 1
		if i < 0 {
			continue // counted as idle above
		}
		bursts[i] = append(bursts[i], f)
	}
	// Frames after the edge must be exposed after it (guest clock synced
	// within slack). A pre-trigger frame may finish just after the edge
	// (a ring capture already in progress), but not later than one frame
	// of the 25 fps stream plus dequeue time under emulation.
	slack := e.clockRTT + 5*time.Millisecond
	preLate := 100*time.Millisecond + slack
	var toAck, toCapture, toLast []time.Duration
	for i, b := range bursts {
		if len(b) != per {
			p.add("pulse %d gave %d frames, want %d", i+1, len(b), per)
			continue
		}
		for j, f := range b {
			if j < pre && f.Meta.Time.After(edges[i].Add(preLate)) {
				p.add("pulse %d: pre-trigger frame %d captured %v after the edge", i+1, j+1, f.Meta.Time.Sub(edges[i]).Round(time.Millisecond))
			}
			if j >= pre && f.Meta.Time.Before(edges[i].Add(-slack)) {
				p.add("pulse %d: frame %d captured %v before the edge", i+1, j+1, edges[i].Sub(f.Meta.Time).Round(time.Millisecond))
			}
		}
		toAck = append(toAck, b[pre].AckAt.Sub(edges[i]))
		toCapture = append(toCapture, b[pre].Meta.Time.Sub(edges[i]))
		toLast = append(toLast, b[per-1].AckAt.Sub(edges[i]))
	}
	r := &report{}
	r.add("%d pulses -> %d bursts of %d pre-trigger + %d frames, none while idle", pulses, pulses, pre, frames)
	if len(toAck) > 0 {
		r.add("edge -> first frame after it acknowledged: median %v, max %v (edge -> its capture: median %v; guest clock synced within %v)",
			median(toAck), maxDur(toAck), median(toCapture), e.clockRTT.Round(time.Microsecond))
		r.add("edge -> whole burst acknowledged: median %v, max %v", median(toLast), maxDur(toLast))
	}
	return r, p.err()
}

// waitLineRequested polls debugfs until a process holds the line.
func waitLineRequested(e *env, a *agentRun, label string, offset int, within time.Duration) error {
	deadline := time.Now().Add(within)
	header := regexp.MustCompile(`GPIOs (\d+)-\d+, .*` + regexp.QuoteMeta(label))
	for {
		out, _, err := e.g.sh("cat /sys/kernel/debug/gpio", 10*time.Second)
		if err != nil {
			return err
		}
		if m := header.FindStringSubmatch(out); m != nil {
			base, _ := strconv.Atoi(m[1])
			if strings.Contains(out, fmt.Sprintf("gpio-%d ", base+offset)) {
				return nil
			}
		}
		if err := a.running(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the agent did not request %s line %d within %v; /sys/kernel/debug/gpio:\n%s\nagent log:\n%s",
				label, offset, within, out, a.tail(30))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// scenarioUnplug unloads vivid under the streaming agent, checks the agent
// logs it and backs off instead of spinning, reloads vivid and checks
// capture resumes with no queued frame lost.
func scenarioUnplug(e *env) (*report, error) {
	const (
		name = "s3-unplug"
		bin  = "framepush-arm64"
		fps  = 2.0
	)
	a, err := e.startAgent(bin, name, "unplug", map[string]any{"FPS": fps})
	if err != nil {
		return nil, err
	}
	if _, ok := e.tap.waitFor(name, 60*time.Second, atLeast(4)); !ok {
		a.stop()
		return nil, fmt.Errorf("fewer than 4 frames within 60 s; agent log:\n%s", a.tail(30))
	}
	logBefore := len(a.logLines())
	unplugged, released, err := unplugCamera(e, 15*time.Second)
	if err != nil {
		a.stop()
		return nil, err
	}
	var p problems
	time.Sleep(3 * time.Second)
	st0, err := e.g.stats(a.pid)
	if err != nil {
		return nil, err
	}
	time.Sleep(8 * time.Second)
	st1, err := e.g.stats(a.pid)
	if err != nil {
		return nil, err
	}
	cpu := st1.CPU - st0.CPU
	wall := st1.Taken.Sub(st0.Taken)
	share := cpu.Seconds() / wall.Seconds()
	if share > 0.2 {
		p.add("while the camera was gone the agent used %.0f%% of a core (%v in %.1f s): it spins instead of backing off", 100*share, cpu, wall.Seconds())
	}
	lines := a.logLines()
	complaints := 0
	for _, l := range lines[min(logBefore, len(lines)):] {
		if strings.Contains(l, `"level":"WARN"`) || strings.Contains(l, `"level":"ERROR"`) {
			complaints++
		}
	}
	if complaints == 0 {
		p.add("the agent logged no warning or error after the camera went away; its log:\n%s", a.tail(20))
	}
	// More than one complaint per missed frame is a flood.
	if gone := time.Since(unplugged).Seconds(); float64(complaints) > fps*gone {
		p.add("the agent logged %d warnings and errors in %.0f s without a camera (more than one per missed frame): it floods the log", complaints, gone)
	}
	replugged, err := replugCamera(e)
	if err != nil {
		a.stop()
		return nil, err
	}
	resumed := func(fs []frameRec) bool {
		n := 0
		for _, f := range fs {
			if f.Meta.Time.After(replugged) {
				n++
			}
		}
		return n >= 3
	}
	if _, ok := e.tap.waitFor(name, 60*time.Second, resumed); !ok {
		p.add("capture did not resume within 60 s of modprobe vivid; agent log:\n%s", a.tail(30))
	}
	resumeAfter := time.Duration(0)
	for _, f := range e.tap.acks(name) {
		if f.Meta.Time.After(replugged) {
			resumeAfter = f.Meta.Time.Sub(replugged)
			break
		}
	}
	if err := a.running(); err != nil {
		return nil, err
	}
	if err := a.stop(); err != nil {
		return nil, err
	}
	fs, probs := verify(e.recv, e.tap, name, width, height)
	p = append(p, probs...)
	before := 0
	for _, f := range fs.Recs {
		if f.Meta.Time.Before(unplugged) {
			before++
		}
	}
	r := &report{}
	r.add("%d frames before the unplug, %d in all; ids consecutive across it", before, len(fs.Recs))
	r.add("device released %v after the unplug (rmmod succeeded); camera gone: agent CPU %.1f%% of a core (%v in %.1f s), %d warning/error log lines",
		released.Round(time.Millisecond), 100*share, cpu, wall.Seconds(), complaints)
	r.add("first frame captured %v after modprobe vivid", resumeAfter.Round(time.Millisecond))
	return r, p.err()
}

// scenarioOutage stops framerecv for 20 s under the running agent; the
// frames captured meanwhile must arrive once it is back.
func scenarioOutage(e *env) (*report, error) {
	const (
		name = "s4-outage"
		bin  = "framepush-arm64"
		fps  = 2.0
		down = 20 * time.Second
	)
	a, err := e.startAgent(bin, name, "outage", map[string]any{"FPS": fps})
	if err != nil {
		return nil, err
	}
	if _, ok := e.tap.waitFor(name, 60*time.Second, atLeast(4)); !ok {
		a.stop()
		return nil, fmt.Errorf("fewer than 4 frames within 60 s; agent log:\n%s", a.tail(30))
	}
	// framerecv first: it finishes the frame in flight and its GOT IMAGE
	// still passes the tap, so no frame is stored without the tap seeing
	// the acknowledgement. Then connections are refused, as with a host
	// whose receiver is down.
	if err := e.recv.stop(); err != nil {
		a.stop()
		return nil, err
	}
	e.tap.pause()
	wentDown := time.Now()
	e.logf("%s: receiver down", name)
	time.Sleep(down / 2)
	if err := a.running(); err != nil {
		return nil, err
	}
	st, _ := e.g.stats(a.pid)
	time.Sleep(down - time.Since(wentDown))
	if err := e.recv.start(); err != nil {
		return nil, err
	}
	if err := e.tap.resume(); err != nil {
		return nil, err
	}
	cameBack := time.Now()
	e.logf("%s: receiver back", name)
	caughtUp := func(fs []frameRec) bool {
		n := 0
		for _, f := range fs {
			if f.Meta.Time.After(cameBack) {
				n++
			}
		}
		return n >= 3
	}
	var p problems
	if _, ok := e.tap.waitFor(name, 90*time.Second, caughtUp); !ok {
		p.add("the backlog did not drain within 90 s of the receiver coming back; agent log:\n%s", a.tail(30))
	}
	drained := time.Since(cameBack)
	if err := a.running(); err != nil {
		return nil, err
	}
	if err := a.stop(); err != nil {
		return nil, err
	}
	fs, probs := verify(e.recv, e.tap, name, width, height)
	p = append(p, probs...)
	during := 0
	for _, f := range fs.Recs {
		if f.Meta.Time.After(wentDown) && f.Meta.Time.Before(cameBack) {
			during++
		}
	}
	if want := fps * down.Seconds() * 0.8; float64(during) < want {
		p.add("%d frames captured during the %v outage arrived; want at least %.0f", during, down, want)
	}
	r := &report{}
	r.add("%d frames captured while the receiver was down arrived after it came back (%d in all, ids consecutive)", during, len(fs.Recs))
	r.add("backlog delivered within %v; agent RSS during the outage %s", drained.Round(100*time.Millisecond), kib(st.RSS))
	return r, p.err()
}

// probeResult parses the probe's "PROBE-RESULT {json}" line.
func probeResult(out string) (map[string]any, error) {
	for _, l := range strings.Split(out, "\n") {
		if j, ok := strings.CutPrefix(l, "PROBE-RESULT "); ok {
			var m map[string]any
			if err := json.Unmarshal([]byte(j), &m); err != nil {
				return nil, err
			}
			if m["ok"] != true {
				return m, fmt.Errorf("probe failed: %v", m["error"])
			}
			return m, nil
		}
	}
	return nil, fmt.Errorf("no PROBE-RESULT line in:\n%s", out)
}

// scenarioProbe proves the kernel paths without the agent: vivid capture
// through blackjack/webcam, PL061 edges through periph's gpioioctl (exactly
// one rising edge per pulse, none otherwise), and what rmmod does to a
// streaming reader. Both word sizes.
func scenarioProbe(e *env) (*report, error) {
	var p problems
	r := &report{}
	for _, bin := range []string{"probe-arm64", "probe-armv7"} {
		path := "/vmtest/bin/" + bin
		out, _, err := e.g.sh(path+" list", 30*time.Second)
		if err != nil {
			return nil, err
		}
		m, err := probeResult(out)
		if err != nil {
			p.add("%s list: %v", bin, err)
		} else {
			js, _ := json.Marshal(m)
			s := string(js)
			if !strings.Contains(s, `"path":"/dev/video0"`) || !strings.Contains(s, "YUYV") {
				p.add("%s list: no /dev/video0 offering YUYV: %s", bin, s)
			}
			if !strings.Contains(s, `"label":"9030000.pl061","lines":8`) {
				p.add("%s list: no 8-line chip 9030000.pl061: %s", bin, s)
			}
		}
		out, _, err = e.g.sh(path+" video -frames 10", 60*time.Second)
		if err != nil {
			return nil, err
		}
		if m, err := probeResult(out); err != nil {
			p.add("%s video: %v", bin, err)
		} else {
			r.add("%s: 10 YUYV 640x480 frames at %.1f fps", bin, m["fps"])
		}

		const pulses = 5
		log := "/tmp/" + bin + "-gpio.log"
		pid, err := e.g.start(path+" gpio -chip 9030000.pl061 -offset 3 -edge rising -for 12s", log)
		if err != nil {
			return nil, err
		}
		ready := false
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if out, _, _ := e.g.sh("cat "+log, 5*time.Second); strings.Contains(out, "PROBE-READY") {
				ready = true
				break
			}
		}
		if !ready {
			p.add("%s gpio never became ready", bin)
		}
		for i := 0; i < pulses && ready; i++ {
			if _, err := e.v.pulse(); err != nil {
				return nil, err
			}
			time.Sleep(time.Second)
		}
		if exited, _, err := e.g.wait(pid, 30*time.Second); err != nil || !exited {
			return nil, fmt.Errorf("%s gpio did not finish (%v)", bin, err)
		}
		out, _, _ = e.g.sh("cat "+log, 5*time.Second)
		if m, err := probeResult(out); err != nil {
			p.add("%s gpio: %v", bin, err)
		} else if m["edges"] != float64(pulses) {
			p.add("%s gpio: %v rising edges for %d pulses", bin, m["edges"], pulses)
		} else {
			r.add("%s: %d rising edges for %d pulses on 9030000.pl061 line 3", bin, pulses, pulses)
		}
	}

	// Unplug under a streaming reader, then replug and capture again.
	log := "/tmp/probe-unplug.log"
	pid, err := e.g.start("/vmtest/bin/probe-arm64 video -frames 1000000", log)
	if err != nil {
		return nil, err
	}
	time.Sleep(3 * time.Second)
	_, released, err := unplugCamera(e, 20*time.Second)
	if err != nil {
		p.add("%v", err)
	}
	exited, prc, err := e.g.wait(pid, 20*time.Second)
	if err != nil {
		return nil, err
	}
	pout, _, _ := e.g.sh("cat "+log, 5*time.Second)
	if !exited {
		p.add("the streaming probe did not notice the unplug within 20 s")
		e.g.signal(pid, 9)
	} else {
		r.add("unplug while streaming: reader exited %d (%s), rmmod vivid %v later",
			prc, strings.TrimSpace(strings.TrimPrefix(pout, "PROBE-RESULT ")), released.Round(time.Millisecond))
	}
	if _, err := replugCamera(e); err != nil {
		p.add("%v", err)
	} else if out, rc, err := e.g.sh("/vmtest/bin/probe-arm64 video -frames 3", 60*time.Second); err != nil || rc != 0 {
		p.add("capture after modprobe vivid failed (%d, %v): %s", rc, err, out)
	} else {
		r.add("after modprobe vivid: capture works again")
	}
	return r, p.err()
}

// unplugCamera does what a USB disconnect does to a camera driver: the
// vivid device is unbound (its nodes vanish; open handles get ENODEV).
// Plain "rmmod vivid" under an open handle fails with EAGAIN (module in
// use), so the module is removed only once every handle is closed: a
// reader that keeps the dead device open makes this fail.
func unplugCamera(e *env, release time.Duration) (time.Time, time.Duration, error) {
	out, rc, err := e.g.sh("echo vivid.0 > /sys/bus/platform/drivers/vivid/unbind", 30*time.Second)
	if err != nil {
		return time.Time{}, 0, err
	}
	if rc != 0 {
		return time.Time{}, 0, fmt.Errorf("unbinding vivid.0 exited %d: %s", rc, out)
	}
	unplugged := time.Now()
	for {
		out, rc, err = e.g.sh("rmmod vivid", 30*time.Second)
		if err != nil {
			return unplugged, 0, err
		}
		if rc == 0 {
			return unplugged, time.Since(unplugged), nil
		}
		if time.Since(unplugged) > release {
			return unplugged, 0, fmt.Errorf("rmmod vivid still fails %v after the unplug (%s): the dead camera is still held open",
				release, strings.TrimSpace(out))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// replugCamera loads vivid again: /dev/video0 comes back.
func replugCamera(e *env) (time.Time, error) {
	out, rc, err := e.g.sh("modprobe vivid && ls /dev/video0", 30*time.Second)
	if err != nil {
		return time.Time{}, err
	}
	if rc != 0 {
		return time.Time{}, fmt.Errorf("modprobe vivid exited %d: %s", rc, out)
	}
	return time.Now(), nil
}

func atLeast(n int) func([]frameRec) bool {
	return func(fs []frameRec) bool { return len(fs) >= n }
}

func maxGap(fs []frameRec) (time.Duration, string) {
	var gap time.Duration
	id := ""
	for i := 1; i < len(fs); i++ {
		if d := fs[i].Meta.Time.Sub(fs[i-1].Meta.Time); d > gap {
			gap, id = d, fs[i].Meta.ID
		}
	}
	return gap, id
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2].Round(time.Millisecond)
}

func maxDur(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m.Round(time.Millisecond)
}

func medianAck(fs []frameRec) time.Duration {
	var ds []time.Duration
	for _, f := range fs {
		ds = append(ds, f.AckAt.Sub(f.SentAt))
	}
	return median(ds)
}

func medianSize(fs []frameRec) int64 {
	var s []int64
	for _, f := range fs {
		s = append(s, f.Size)
	}
	if len(s) == 0 {
		return 0
	}
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// kib formats a KiB count.
func kib(k int64) string {
	if k >= 10*1024 {
		return fmt.Sprintf("%.1f MiB", float64(k)/1024)
	}
	return fmt.Sprintf("%d KiB", k)
}
