package main

import (
	"bytes"
	"embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"text/template"
	"time"
)

// The agent's configurations for each scenario, one YAML template per kind,
// all in configs/ so key names are easy to adjust in one place.
//
//go:embed configs/*.yaml
var configFS embed.FS

var configs = template.Must(template.New("").Option("missingkey=error").ParseFS(configFS, "configs/*.yaml"))

// agentRun is one framepush process in the guest.
type agentRun struct {
	e    *env
	name string // client name: framerecv folder and tap key
	bin  string // guest binary, e.g. framepush-arm64
	pid  int
	log  string // guest path of its output
	cfg  string // guest path of its config

	stopped bool // stop was called: the process is gone and reaped
}

// startAgent renders configs/<tmpl>.yaml with params (plus Name and
// Server), copies it into the guest and starts `framepush run` on it.
func (e *env) startAgent(bin, name, tmpl string, params map[string]any) (*agentRun, error) {
	p := map[string]any{"Name": name, "Server": e.server}
	for k, v := range params {
		p[k] = v
	}
	var buf bytes.Buffer
	if err := configs.ExecuteTemplate(&buf, tmpl+".yaml", p); err != nil {
		return nil, fmt.Errorf("config %s: %w", tmpl, err)
	}
	a := &agentRun{e: e, name: name, bin: bin, log: "/tmp/" + name + ".log", cfg: "/etc/framepush/" + name + ".yaml"}
	os.WriteFile(filepath.Join(e.work, name+".yaml"), buf.Bytes(), 0o644)
	if err := e.g.put(a.cfg, buf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	pid, err := e.g.start(fmt.Sprintf("/vmtest/bin/%s run --config %s", bin, a.cfg), a.log)
	if err != nil {
		return nil, err
	}
	a.pid = pid
	e.agent = a
	e.logf("%s: started %s (pid %d) with %s", name, bin, pid, a.cfg)
	return a, nil
}

// running fails if the agent has exited, with the tail of its log.
func (a *agentRun) running() error {
	exited, rc, err := a.e.g.wait(a.pid, 0)
	if err != nil {
		return err
	}
	if exited {
		return fmt.Errorf("%s exited with status %d; its log:\n%s", a.bin, rc, a.tail(30))
	}
	return nil
}

// tail returns the last n lines of the agent's log.
func (a *agentRun) tail(n int) string {
	out, _, err := a.e.g.sh(fmt.Sprintf("tail -n %d %s", n, a.log), 10*time.Second)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return out
}

// logLines returns the agent's whole log.
func (a *agentRun) logLines() []string {
	out, _, err := a.e.g.sh("cat "+a.log, 20*time.Second)
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimRight(out, "\n"), "\n")
}

// stop sends SIGTERM like systemd does, waits for an orderly exit (status
// 0, frames in flight delivered or spooled) and keeps the log and metrics
// on the host.
func (a *agentRun) stop() error {
	if a.stopped {
		return nil
	}
	a.stopped = true
	if out, rc, err := a.e.g.sh("wget -q -T 5 -O- http://127.0.0.1:7401/metrics", 15*time.Second); err == nil && rc == 0 {
		os.WriteFile(filepath.Join(a.e.work, a.name+".metrics.txt"), []byte(out), 0o644)
	}
	defer a.save()
	if err := a.e.g.signal(a.pid, syscall.SIGTERM); err != nil {
		return err
	}
	exited, rc, err := a.e.g.wait(a.pid, 30*time.Second)
	if err != nil {
		return err
	}
	if !exited {
		a.e.g.signal(a.pid, syscall.SIGKILL)
		a.e.g.wait(a.pid, 10*time.Second)
		return fmt.Errorf("%s did not exit within 30 s of SIGTERM; its log:\n%s", a.bin, a.tail(30))
	}
	if rc != 0 {
		return fmt.Errorf("%s exited with status %d after SIGTERM; its log:\n%s", a.bin, rc, a.tail(30))
	}
	return nil
}

func (a *agentRun) save() {
	out, _, err := a.e.g.sh("cat "+a.log, 20*time.Second)
	if err == nil {
		os.WriteFile(filepath.Join(a.e.work, a.name+".agent.log"), []byte(out), 0o644)
	}
}
