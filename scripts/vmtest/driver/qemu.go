package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// vmConfig is how the guest is booted.
type vmConfig struct {
	QEMU    string // qemu-system-aarch64
	Kernel  string
	Initrd  string
	Memory  string // e.g. "1024M"
	CPUs    int
	Append  string // extra kernel command line
	Serial  string // file the console is copied to
	QMPPath string // unix socket for QMP
}

// vm is a running qemu guest.
type vm struct {
	cmd    *exec.Cmd
	qmp    *qmp
	serial string
	exited chan struct{} // closed when qemu exits
	err    error         // qemu's exit status, valid after exited

	mu    sync.Mutex
	fails []string // "VMTEST: FAIL" markers and kernel oopses seen on the console
}

// boot starts qemu: arm64 virt board under TCG (KVM does not work on the
// build hosts), user-mode network, console on stdout copied to a file, QMP
// on a unix socket.
func boot(c vmConfig) (*vm, error) {
	args := []string{
		"-M", "virt", "-cpu", "cortex-a53", "-accel", "tcg",
		"-smp", fmt.Sprint(c.CPUs), "-m", c.Memory,
		"-display", "none", "-monitor", "none", "-serial", "stdio",
		"-no-reboot",
		"-kernel", c.Kernel, "-initrd", c.Initrd,
		"-append", "console=ttyAMA0 panic=-1 " + c.Append,
		"-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,romfile=",
		"-qmp", "unix:" + c.QMPPath + ",server=on,wait=off",
	}
	os.Remove(c.QMPPath)
	logf, err := os.Create(c.Serial)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(c.QEMU, args...)
	cmd.Stdin = nil
	out, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	cmd.Stderr = logf
	fmt.Fprintf(logf, "# %s %s\n", c.QEMU, strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", c.QEMU, err)
	}
	v := &vm{cmd: cmd, serial: c.Serial, exited: make(chan struct{})}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		v.watch(out, logf)
	}()
	go func() {
		<-copied
		v.err = cmd.Wait()
		logf.Close()
		close(v.exited)
	}()
	q, err := dialQMP(c.QMPPath, 10*time.Second, v.exited)
	if err != nil {
		v.kill()
		return nil, err
	}
	v.qmp = q
	return v, nil
}

// watch copies the console to the log file and notes failure markers.
func (v *vm) watch(r io.Reader, w io.Writer) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		fmt.Fprintln(w, line)
		if strings.Contains(line, "VMTEST: FAIL") || strings.Contains(line, "Kernel panic") ||
			strings.Contains(line, "Oops") || strings.Contains(line, "BUG:") || strings.Contains(line, "WARNING: CPU") {
			v.mu.Lock()
			v.fails = append(v.fails, line)
			v.mu.Unlock()
		}
	}
}

// failures returns the failure lines seen on the console so far.
func (v *vm) failures() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.fails...)
}

// wait waits up to d for qemu to exit by itself.
func (v *vm) wait(d time.Duration) bool {
	select {
	case <-v.exited:
		return true
	case <-time.After(d):
		return false
	}
}

func (v *vm) kill() {
	if v.cmd.Process != nil {
		v.cmd.Process.Kill()
	}
	<-v.exited
}

// pulse raises the virt board's PL061 line 3 for about 100 ms: QEMU wires
// its power button (gpio-key) there, and system_powerdown presses it. It
// returns the host time the press took effect (midpoint of the call).
func (v *vm) pulse() (time.Time, error) {
	before := time.Now()
	err := v.qmp.do("system_powerdown")
	after := time.Now()
	return before.Add(after.Sub(before) / 2), err
}

// qmp is a minimal QEMU Machine Protocol client.
type qmp struct {
	mu sync.Mutex
	c  net.Conn
	r  *bufio.Reader
}

func dialQMP(path string, within time.Duration, exited <-chan struct{}) (*qmp, error) {
	deadline := time.Now().Add(within)
	var c net.Conn
	var err error
	for {
		c, err = net.Dial("unix", path)
		if err == nil {
			break
		}
		select {
		case <-exited:
			return nil, errors.New("qemu exited before its QMP socket came up")
		default:
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("QMP socket %s: %w", path, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	q := &qmp{c: c, r: bufio.NewReader(c)}
	c.SetDeadline(time.Now().Add(within))
	var greeting map[string]json.RawMessage
	if err := q.read(&greeting); err != nil {
		c.Close()
		return nil, fmt.Errorf("QMP greeting: %w", err)
	}
	if _, ok := greeting["QMP"]; !ok {
		c.Close()
		return nil, fmt.Errorf("QMP greeting has no QMP key: %v", greeting)
	}
	c.SetDeadline(time.Time{})
	if err := q.do("qmp_capabilities"); err != nil {
		c.Close()
		return nil, err
	}
	return q, nil
}

func (q *qmp) read(v any) error {
	line, err := q.r.ReadBytes('\n')
	if err != nil {
		return err
	}
	return json.Unmarshal(line, v)
}

// do runs one QMP command without arguments and waits for its return,
// skipping asynchronous events.
func (q *qmp) do(command string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.c.SetDeadline(time.Now().Add(10 * time.Second))
	defer q.c.SetDeadline(time.Time{})
	if _, err := fmt.Fprintf(q.c, "{\"execute\":%q}\n", command); err != nil {
		return fmt.Errorf("QMP %s: %w", command, err)
	}
	for {
		var msg struct {
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Class string `json:"class"`
				Desc  string `json:"desc"`
			} `json:"error"`
			Event string `json:"event"`
		}
		if err := q.read(&msg); err != nil {
			return fmt.Errorf("QMP %s: %w", command, err)
		}
		switch {
		case msg.Error != nil:
			return fmt.Errorf("QMP %s: %s: %s", command, msg.Error.Class, msg.Error.Desc)
		case msg.Return != nil:
			return nil
		}
	}
}

// tail returns the last n lines of a file, for failure reports.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
