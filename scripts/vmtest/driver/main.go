// Command vmdriver runs framepush's emulated-board test: it boots an arm64
// qemu guest (virt board: vivid camera module, PL061 GPIO) from the kernel
// and initramfs that scripts/vmtest.sh prepared, runs framerecv on the host
// behind a recording tap, and drives the scenarios over the guest helper's
// control connection, pulsing the GPIO line through QMP. It checks every
// result on the host, prints a summary and exits non-zero on any failure.
//
// It is a main package without tests on purpose: `go test ./...` of the
// module builds it but never runs anything slow.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	o := options{}
	flag.StringVar(&o.kernel, "kernel", "", "arm64 kernel Image")
	flag.StringVar(&o.initrd, "initrd", "", "initramfs (cpio)")
	flag.StringVar(&o.framerecv, "framerecv", "", "host framerecv binary (empty: scenarios that need it are skipped)")
	flag.StringVar(&o.work, "work", "", "folder for logs, configs and received frames")
	flag.StringVar(&o.scenarios, "scenarios", "auto", "comma-separated scenarios to run, or auto (all the built binaries allow), or all")
	flag.StringVar(&o.qemu, "qemu", "qemu-system-aarch64", "qemu system emulator")
	flag.IntVar(&o.cpus, "cpus", 2, "guest CPUs")
	flag.StringVar(&o.mem, "mem", "1024M", "guest memory")
	flag.DurationVar(&o.bootTimeout, "boot-timeout", 2*time.Minute, "time for the guest to boot and connect")
	flag.StringVar(&o.summary, "summary", "", "also write the summary to this file")
	flag.StringVar(&o.note, "note", "", `a result from outside the VM for the summary, starting "PASS  " or "FAIL  "`)
	flag.Parse()
	if o.kernel == "" || o.initrd == "" || o.work == "" {
		fmt.Fprintln(os.Stderr, "vmdriver: -kernel, -initrd and -work are required (scripts/vmtest.sh passes them)")
		os.Exit(2)
	}
	os.Exit(run(o))
}

type options struct {
	kernel, initrd, framerecv, work, scenarios, qemu, mem, summary, note string
	cpus                                                                 int
	bootTimeout                                                          time.Duration
}

// outcome of one scenario for the summary.
type outcome struct {
	s      *scenario
	status string // PASS, FAIL, SKIP
	why    string
	rep    *report
	took   time.Duration
}

func logf(format string, args ...any) {
	fmt.Printf("vmtest %s  %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

func run(o options) int {
	if err := os.MkdirAll(o.work, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "vmdriver:", err)
		return 1
	}
	selected, err := selectScenarios(o.scenarios)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmdriver:", err)
		return 2
	}
	e := &env{work: o.work, logf: logf}
	serial := filepath.Join(o.work, "serial.log")
	fail := func(format string, args ...any) int {
		fmt.Printf("\nvmtest: FAIL: %s\n", fmt.Sprintf(format, args...))
		fmt.Printf("vmtest: guest serial log: %s; its tail:\n%s\n", serial, tail(serial, 60))
		return 1
	}

	needRecv := false
	for _, s := range selected {
		needRecv = needRecv || s.recv
	}
	if needRecv && o.framerecv != "" {
		frames := filepath.Join(o.work, "frames")
		os.RemoveAll(frames)
		r, err := newReceiver(o.framerecv, frames, filepath.Join(o.work, "framerecv.log"))
		if err != nil {
			return fail("%v", err)
		}
		if err := r.start(); err != nil {
			return fail("%v", err)
		}
		defer r.stop()
		e.recv = r
		t, err := newTap(r.addr)
		if err != nil {
			return fail("%v", err)
		}
		defer t.close()
		e.tap = t
		e.server = fmt.Sprintf("10.0.2.2:%d", t.port())
	}

	ctlLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail("%v", err)
	}
	defer ctlLn.Close()
	ctlPort := ctlLn.Addr().(*net.TCPAddr).Port

	start := time.Now()
	logf("booting %s with %s (serial log %s)", filepath.Base(o.kernel), filepath.Base(o.initrd), serial)
	v, err := boot(vmConfig{
		QEMU: o.qemu, Kernel: o.kernel, Initrd: o.initrd, Memory: o.mem, CPUs: o.cpus,
		Append:  fmt.Sprintf("vmtest_ctl=10.0.2.2:%d", ctlPort),
		Serial:  serial,
		QMPPath: filepath.Join(o.work, "qmp.sock"),
	})
	if err != nil {
		return fail("%v", err)
	}
	defer func() {
		if !v.wait(0) {
			v.kill()
		}
	}()
	e.v = v
	g, err := acceptGuest(ctlLn, o.bootTimeout, v.exited)
	if err != nil {
		return fail("%v", err)
	}
	e.g = g
	logf("guest up after %.1f s: %s", time.Since(start).Seconds(), g.Uname)
	if e.clockRTT, err = g.syncClock(); err != nil {
		return fail("%v", err)
	}
	out, err := g.must("ls /vmtest/bin", 10*time.Second)
	if err != nil {
		return fail("%v", err)
	}
	e.bins = map[string]bool{}
	for _, b := range strings.Fields(out) {
		e.bins[b] = true
	}

	var results []outcome
	for _, s := range selected {
		if missing := missingFor(e, s, o.framerecv); missing != "" {
			if o.scenarios == "auto" && s.key == "probe" {
				continue
			}
			results = append(results, outcome{s: s, status: "SKIP", why: missing})
			fmt.Printf("\n!!!!!!!! vmtest: SKIPPING %s: %s\n\n", s.title, missing)
			continue
		}
		if o.scenarios == "auto" && s.key == "probe" && e.bins["framepush-arm64"] {
			continue // the agent scenarios cover the kernel paths
		}
		logf("=== %s", s.title)
		t0 := time.Now()
		rep, err := s.run(e)
		e.cleanup()
		oc := outcome{s: s, status: "PASS", rep: rep, took: time.Since(t0)}
		if err != nil {
			oc.status, oc.why = "FAIL", err.Error()
			logf("FAIL %s:\n%s", s.key, err)
		} else {
			logf("PASS %s (%.1f s)", s.key, oc.took.Seconds())
		}
		results = append(results, oc)
	}
	g.quit()
	if !v.wait(30 * time.Second) {
		logf("the guest did not power off within 30 s; killing qemu")
		v.kill()
	}
	consoleFails := v.failures()
	if e.tap != nil {
		for _, pr := range e.tap.problems() {
			consoleFails = append(consoleFails, "wire: "+pr)
		}
	}
	failed := printSummary(o, e, results, consoleFails, time.Since(start))
	if failed {
		fmt.Printf("vmtest: guest serial log: %s; its tail:\n%s\n", serial, tail(serial, 40))
		return 1
	}
	return 0
}

func selectScenarios(spec string) ([]*scenario, error) {
	all := allScenarios()
	if spec == "auto" || spec == "all" {
		return all, nil
	}
	var out []*scenario
	for _, k := range strings.Split(spec, ",") {
		k = strings.TrimSpace(k)
		found := false
		for _, s := range all {
			if s.key == k {
				out = append(out, s)
				found = true
			}
		}
		if !found {
			var keys []string
			for _, s := range all {
				keys = append(keys, s.key)
			}
			return nil, fmt.Errorf("unknown scenario %q; known: %s, auto, all", k, strings.Join(keys, ", "))
		}
	}
	return out, nil
}

// missingFor names what scenario s needs and the build lacks, or "".
func missingFor(e *env, s *scenario, framerecv string) string {
	var miss []string
	for _, b := range s.guest {
		if !e.bins[b] {
			miss = append(miss, "guest binary "+b)
		}
	}
	if s.recv && (framerecv == "" || e.recv == nil) {
		miss = append(miss, "host framerecv")
	}
	if len(miss) == 0 {
		return ""
	}
	return "not built: " + strings.Join(miss, ", ")
}

func printSummary(o options, e *env, results []outcome, consoleFails []string, took time.Duration) (failed bool) {
	var b strings.Builder
	fmt.Fprintf(&b, "\n==================== vmtest summary ====================\n")
	fmt.Fprintf(&b, "guest: %s\n", e.g.Uname)
	fmt.Fprintf(&b, "qemu TCG virt cortex-a53 x%d, %s; guest clock synced to the host within %v\n", o.cpus, o.mem, e.clockRTT.Round(time.Microsecond))
	pass, fail, skip := 0, 0, 0
	for _, r := range results {
		fmt.Fprintf(&b, "%s  %s", r.status, r.s.title)
		if r.took > 0 {
			fmt.Fprintf(&b, " (%.0f s)", r.took.Seconds())
		}
		b.WriteString("\n")
		if r.rep != nil {
			for _, l := range r.rep.lines {
				fmt.Fprintf(&b, "        %s\n", l)
			}
		}
		if r.why != "" {
			for _, l := range strings.Split(r.why, "\n") {
				fmt.Fprintf(&b, "      ! %s\n", l)
			}
		}
		switch r.status {
		case "PASS":
			pass++
		case "FAIL":
			fail++
		default:
			skip++
		}
	}
	if o.note != "" {
		fmt.Fprintf(&b, "%s\n", o.note)
		if strings.HasPrefix(o.note, "FAIL") {
			fail++
		} else {
			pass++
		}
	}
	if len(consoleFails) > 0 {
		fail++
		fmt.Fprintf(&b, "FAIL  trouble on the guest console or the wire:\n")
		for _, l := range consoleFails {
			fmt.Fprintf(&b, "      ! %s\n", l)
		}
	}
	fmt.Fprintf(&b, "logs, configs, agent logs and received frames: %s\n", o.work)
	fmt.Fprintf(&b, "vmtest: %d passed, %d failed, %d skipped in %.0f s\n", pass, fail, skip, took.Seconds())
	if skip > 0 {
		fmt.Fprintf(&b, "!!!!!!!! %d scenario(s) SKIPPED because their binaries are not built\n", skip)
	}
	fmt.Print(b.String())
	if o.summary != "" {
		os.WriteFile(o.summary, []byte(b.String()), 0o644)
	}
	return fail > 0
}
