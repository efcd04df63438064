package main

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"framepush/scripts/vmtest/ctl"
)

// guest is the host's end of the control connection to vmguest.
type guest struct {
	mu    sync.Mutex
	conn  net.Conn
	codec *ctl.Codec
	id    int
	Uname string
}

// acceptGuest waits for vmguest to dial in, or for qemu to die.
func acceptGuest(ln net.Listener, within time.Duration, exited <-chan struct{}) (*guest, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, r.err
		}
		g := &guest{conn: r.c, codec: ctl.NewCodec(r.c)}
		r.c.SetDeadline(time.Now().Add(10 * time.Second))
		var hello ctl.Response
		if err := g.codec.Recv(&hello); err != nil {
			r.c.Close()
			return nil, fmt.Errorf("guest hello: %w", err)
		}
		r.c.SetDeadline(time.Time{})
		g.Uname = hello.Out
		return g, nil
	case <-exited:
		ln.Close()
		return nil, fmt.Errorf("qemu exited before the guest helper connected")
	case <-time.After(within):
		ln.Close()
		return nil, fmt.Errorf("the guest helper did not connect within %v", within)
	}
}

// call sends one request and waits for its answer. The connection deadline
// covers the request's own timeout plus slack for a slow emulated guest.
func (g *guest) call(req ctl.Request) (ctl.Response, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.id++
	req.ID = g.id
	g.conn.SetDeadline(time.Now().Add(req.Timeout + 30*time.Second))
	defer g.conn.SetDeadline(time.Time{})
	if err := g.codec.Send(req); err != nil {
		return ctl.Response{}, fmt.Errorf("guest %s: %w", req.Op, err)
	}
	var resp ctl.Response
	if err := g.codec.Recv(&resp); err != nil {
		return ctl.Response{}, fmt.Errorf("guest %s: %w", req.Op, err)
	}
	if resp.ID != req.ID {
		return resp, fmt.Errorf("guest %s: answer %d to request %d", req.Op, resp.ID, req.ID)
	}
	if resp.Err != "" {
		return resp, fmt.Errorf("guest %s %q: %s", req.Op, req.Cmd+req.Path, resp.Err)
	}
	return resp, nil
}

// sh runs a shell command in the guest and returns its output and exit code.
func (g *guest) sh(cmd string, timeout time.Duration) (string, int, error) {
	r, err := g.call(ctl.Request{Op: ctl.OpExec, Cmd: cmd, Timeout: timeout})
	return r.Out, r.RC, err
}

// must runs a shell command that has to succeed.
func (g *guest) must(cmd string, timeout time.Duration) (string, error) {
	out, rc, err := g.sh(cmd, timeout)
	if err != nil {
		return out, err
	}
	if rc != 0 {
		return out, fmt.Errorf("guest: %q exited %d: %s", cmd, rc, strings.TrimSpace(out))
	}
	return out, nil
}

func (g *guest) start(cmd, log string) (int, error) {
	r, err := g.call(ctl.Request{Op: ctl.OpStart, Cmd: cmd, Log: log})
	return r.PID, err
}

// wait waits up to d for a started process; exited is false on timeout.
func (g *guest) wait(pid int, d time.Duration) (exited bool, rc int, err error) {
	r, err := g.call(ctl.Request{Op: ctl.OpWait, PID: pid, Timeout: d})
	return r.Exited, r.RC, err
}

func (g *guest) signal(pid int, sig syscall.Signal) error {
	_, err := g.call(ctl.Request{Op: ctl.OpSignal, PID: pid, Signal: int(sig)})
	return err
}

func (g *guest) put(path string, data []byte, mode uint32) error {
	_, err := g.call(ctl.Request{Op: ctl.OpPut, Path: path, Data: data, Mode: mode})
	return err
}

// syncClock sets the guest clock to the host's, correcting for half the
// round trip; it returns the round trip, the bound on the remaining error.
func (g *guest) syncClock() (time.Duration, error) {
	var best time.Duration
	for i := 0; i < 3; i++ {
		start := time.Now()
		if _, err := g.call(ctl.Request{Op: ctl.OpSetTime, UnixNano: time.Now().UnixNano()}); err != nil {
			return 0, err
		}
		rtt := time.Since(start)
		if best == 0 || rtt < best {
			best = rtt
		}
	}
	// One more with the half round trip added.
	if _, err := g.call(ctl.Request{Op: ctl.OpSetTime, UnixNano: time.Now().Add(best / 2).UnixNano()}); err != nil {
		return 0, err
	}
	return best, nil
}

func (g *guest) quit() {
	g.call(ctl.Request{Op: ctl.OpQuit})
	g.conn.Close()
}

// procStats is what /proc says about one guest process.
type procStats struct {
	CPU   time.Duration // user + system
	RSS   int64         // KiB
	HWM   int64         // peak RSS, KiB
	Taken time.Time     // host time of the reading
}

// stats reads /proc/PID/stat and /proc/PID/status in the guest. USER_HZ is
// 100 on arm64 and arm Linux.
func (g *guest) stats(pid int) (procStats, error) {
	out, err := g.must(fmt.Sprintf("cat /proc/%d/stat; echo; grep -E '^Vm(RSS|HWM):' /proc/%d/status", pid, pid), 10*time.Second)
	if err != nil {
		return procStats{}, err
	}
	st := procStats{Taken: time.Now()}
	lines := strings.Split(out, "\n")
	// Fields after the command name (which may hold spaces) start at ") ".
	stat := lines[0]
	i := strings.LastIndex(stat, ") ")
	if i < 0 {
		return st, fmt.Errorf("unexpected /proc/%d/stat: %q", pid, stat)
	}
	f := strings.Fields(stat[i+2:])
	if len(f) < 13 {
		return st, fmt.Errorf("short /proc/%d/stat: %q", pid, stat)
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, _ := strconv.ParseInt(f[12], 10, 64) // field 15
	st.CPU = time.Duration(utime+stime) * 10 * time.Millisecond
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			st.RSS = n
		case "VmHWM":
			st.HWM = n
		}
	}
	return st, nil
}
