// Command vmguest is the emulated-board test's helper inside the qemu
// guest. It dials the host driver's control port and runs what it is told:
// shell commands (framepush, rmmod, cat /proc/...), background processes it
// can signal and reap, files to write, the clock to set. It exits on "quit"
// or when the connection drops; the guest's /init then powers off.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"framepush/scripts/vmtest/ctl"
)

func main() {
	addr := flag.String("connect", "10.0.2.2:7499", "host driver's control HOST:PORT")
	wait := flag.Duration("dial-timeout", 60*time.Second, "keep dialling this long")
	flag.Parse()

	conn, err := dial(*addr, *wait)
	if err != nil {
		fmt.Fprintf(os.Stderr, "vmguest: %v\n", err)
		os.Exit(1)
	}
	defer conn.Close()
	g := &guest{procs: map[int]*proc{}}
	if err := g.serve(ctl.NewCodec(conn)); err != nil {
		fmt.Fprintf(os.Stderr, "vmguest: %v\n", err)
		os.Exit(1)
	}
}

func dial(addr string, within time.Duration) (net.Conn, error) {
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err == nil {
			return c, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("dial host driver at %s for %v: %w", addr, within, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// proc is a background process started for the host.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once reaped
	rc   int
}

type guest struct {
	mu    sync.Mutex
	procs map[int]*proc
}

func (g *guest) serve(c *ctl.Codec) error {
	uname, _ := exec.Command("uname", "-a").Output()
	if err := c.Send(ctl.Response{Out: strings.TrimSpace(string(uname))}); err != nil {
		return err
	}
	for {
		var req ctl.Request
		if err := c.Recv(&req); err != nil {
			return fmt.Errorf("control connection: %w", err)
		}
		resp := g.handle(req)
		resp.ID = req.ID
		if err := c.Send(resp); err != nil {
			return err
		}
		if req.Op == ctl.OpQuit {
			return nil
		}
	}
}

func (g *guest) handle(req ctl.Request) ctl.Response {
	switch req.Op {
	case ctl.OpExec:
		return g.exec(req)
	case ctl.OpStart:
		return g.start(req)
	case ctl.OpWait:
		return g.wait(req)
	case ctl.OpSignal:
		g.mu.Lock()
		p := g.procs[req.PID]
		g.mu.Unlock()
		if p == nil {
			return ctl.Response{Err: fmt.Sprintf("pid %d was not started here", req.PID)}
		}
		if err := p.cmd.Process.Signal(syscall.Signal(req.Signal)); err != nil {
			return ctl.Response{Err: err.Error()}
		}
		return ctl.Response{}
	case ctl.OpPut:
		mode := os.FileMode(req.Mode)
		if mode == 0 {
			mode = 0o644
		}
		if err := os.MkdirAll(filepath.Dir(req.Path), 0o755); err != nil {
			return ctl.Response{Err: err.Error()}
		}
		if err := os.WriteFile(req.Path, req.Data, mode); err != nil {
			return ctl.Response{Err: err.Error()}
		}
		return ctl.Response{}
	case ctl.OpSetTime:
		before := time.Now()
		tv := syscall.NsecToTimeval(req.UnixNano)
		if err := syscall.Settimeofday(&tv); err != nil {
			return ctl.Response{Err: "settimeofday: " + err.Error()}
		}
		return ctl.Response{Out: time.Unix(0, req.UnixNano).Sub(before).String()}
	case ctl.OpQuit:
		return ctl.Response{}
	}
	return ctl.Response{Err: fmt.Sprintf("unknown op %q", req.Op)}
}

func (g *guest) exec(req ctl.Request) ctl.Response {
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", req.Cmd)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	resp := ctl.Response{Out: out.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		resp.Err = fmt.Sprintf("timed out after %v", timeout)
		resp.RC = -1
	case errors.As(err, &ee):
		resp.RC = ee.ExitCode()
	case err != nil:
		resp.Err = err.Error()
		resp.RC = -1
	}
	return resp
}

func (g *guest) start(req ctl.Request) ctl.Response {
	log, err := os.OpenFile(req.Log, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return ctl.Response{Err: err.Error()}
	}
	defer log.Close()
	cmd := exec.Command("/bin/sh", "-c", "exec "+req.Cmd)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return ctl.Response{Err: err.Error()}
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		p.rc = 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			p.rc = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				p.rc = 128 + int(ws.Signal())
			}
		} else if err != nil {
			p.rc = -1
		}
		close(p.done)
	}()
	g.mu.Lock()
	g.procs[cmd.Process.Pid] = p
	g.mu.Unlock()
	return ctl.Response{PID: cmd.Process.Pid}
}

func (g *guest) wait(req ctl.Request) ctl.Response {
	g.mu.Lock()
	p := g.procs[req.PID]
	g.mu.Unlock()
	if p == nil {
		return ctl.Response{Err: fmt.Sprintf("pid %d was not started here", req.PID)}
	}
	select {
	case <-p.done:
		return ctl.Response{Exited: true, RC: p.rc}
	case <-time.After(req.Timeout):
		return ctl.Response{}
	}
}
