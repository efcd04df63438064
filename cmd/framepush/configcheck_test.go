package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"framepush/agent"
	"framepush/config"
	"framepush/internal/logging"
	"framepush/internal/testutil"
)

// refusedAtRun lists configurations that `config check` used to accept and
// `run` then refused (exit 1, "sender: sender: ..."), or whose numbers were
// silently cut. Each must now be refused by check, at the offending key's
// line, with the message run prints (exit 2).
func refusedAtRun(t *testing.T) []struct {
	name, body, want string
	line             int
} {
	pki := testutil.NewPKI(t, "check-ca")
	return []struct {
		name, body, want string
		line             int
	}{
		{"address without host", "server: {addresses: [\":7400\"]}\n", `server.addresses: ":7400" has no host`, 1},
		{"second address without host", "server:\n  addresses:\n    - 10.0.0.1:7400\n    - :7400\n", `server.addresses: ":7400" has no host`, 4},
		{"CA file holds no certificate", fmt.Sprintf("server:\n  tls:\n    enabled: true\n    ca: %s\n", pki.ServerKey), "server.tls.ca: TLS CA file " + pki.ServerKey + " holds no PEM certificate", 4},
		{"certificate and key do not match", fmt.Sprintf("server:\n  tls:\n    enabled: true\n    cert: %s\n    key: %s\n", pki.ClientCert, pki.ServerKey), "server.tls.cert: cannot load TLS client certificate", 4},
		{"empty program name", "source:\n  type: command\n  command: [\"\"]\n", "source.command: source.type is command but source.command is empty or starts with an empty program name", 3},
		{"fractional frames", "queue:\n  memory_frames: 1.5\n", "queue.memory_frames: 1.5 is not a whole number", 2},
		{"fractional width", "source:\n  width: 640.9\n", "source.width: 640.9 is not a whole number", 2},
	}
}

func TestConfigCheckRefusesWhatRunRefuses(t *testing.T) {
	agentBin, _ := bins(t)
	dir := t.TempDir()
	for i, c := range refusedAtRun(t) {
		t.Run(c.name, func(t *testing.T) {
			f := filepath.Join(dir, fmt.Sprintf("c%d.yaml", i))
			if err := os.WriteFile(f, []byte(c.body), 0o644); err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("config: %s:%d: %s", f, c.line, c.want)
			exec1 := func(args ...string) (int, string) {
				cmd := exec.Command(agentBin, args...)
				cmd.Env = append(os.Environ(), "FRAMEPUSH_CONFIG=")
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				cmd.Run()
				return cmd.ProcessState.ExitCode(), stderr.String()
			}
			code, checkErr := exec1("config", "check", f)
			if code != 1 || !strings.Contains(checkErr, want) {
				t.Fatalf("config check exit %d, stderr:\n%s\nwant exit 1 and %q", code, checkErr, want)
			}
			code, runErr := exec1("run", "--config", f)
			if code != 2 {
				t.Fatalf("run exit %d, want 2 (configuration error); stderr:\n%s", code, runErr)
			}
			// The very lines check printed, and no doubled prefix.
			if !strings.Contains(runErr, strings.TrimSpace(checkErr)) {
				t.Errorf("run says:\n%s\ncheck said:\n%s", runErr, checkErr)
			}
			for _, doubled := range []string{"sender: sender:", "queue: queue:"} {
				if strings.Contains(runErr, doubled) {
					t.Errorf("run stderr has %q:\n%s", doubled, runErr)
				}
			}
		})
	}
}

// Every configuration check accepts is accepted by the constructors run
// uses: the example file, and edge cases next to the refused ones above.
func TestConfigCheckAcceptedStarts(t *testing.T) {
	pki := testutil.NewPKI(t, "check-ca")
	imgs := t.TempDir()
	if err := os.WriteFile(filepath.Join(imgs, "a.jpg"), []byte("\xFF\xD8\xFF"), 0o644); err != nil {
		t.Fatal(err)
	}
	accepted := map[string]string{
		"example":        config.Example,
		"IPv6 and names": "server:\n  addresses: [\"[::1]:7400\", localhost:7400, 127.0.0.1:7401]\n",
		"TLS":            fmt.Sprintf("server:\n  tls:\n    enabled: true\n    ca: %s\n    cert: %s\n    key: %s\n", pki.CA, pki.ClientCert, pki.ClientKey),
		"whole floats":   "source:\n  width: 320.0\n  height: 240\nqueue:\n  memory_frames: 4\n",
		"dir":            "source:\n  type: dir\n  dir: " + imgs + "\n",
		"command":        "source:\n  type: command\n  command: [\"true\"]\n",
		"interval":       "trigger:\n  type: interval\n  interval: 1s\n",
	}
	dir := t.TempDir()
	for name, body := range accepted {
		t.Run(name, func(t *testing.T) {
			f := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".yaml")
			if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			if code := run([]string{"config", "check", f}, &out, &errb); code != 0 {
				t.Fatalf("config check exit %d:\n%s", code, errb.String())
			}
			l, err := config.Load(f, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			cfg := l.Config
			cfg.HTTP.Listen = ""             // no fixed port in tests
			cfg.Queue.SpoolDir = t.TempDir() // a fresh spool
			cfg.Shutdown.Timeout = 100000000 // 100ms: nothing to drain
			if err := agent.CheckConfig(cfg); err != nil {
				t.Fatalf("CheckConfig refused a checked file: %v", err)
			}
			a, err := agent.New(cfg, agent.Options{Logger: logging.Discard, Notify: func(string) {}, StatusEvery: -1})
			if err != nil {
				t.Fatalf("agent.New refused a checked file: %v", err)
			}
			// Run builds source, trigger and sender, then stops at once.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if err := a.Run(ctx, nil); err != nil {
				t.Fatalf("Run refused a checked file: %v", err)
			}
		})
	}
}

// A 50 MB file used to be read whole (304 MB peak RSS in config check):
// both commands refuse it unread, run with the configuration exit status.
func TestConfigFileSizeCap(t *testing.T) {
	agentBin, _ := bins(t)
	f := filepath.Join(t.TempDir(), "huge.yaml")
	fh, err := os.Create(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := fh.Truncate(50 << 20); err != nil { // sparse
		t.Fatal(err)
	}
	fh.Close()
	want := f + ": 52428800 bytes, larger than the 1048576-byte (1 MiB) limit for a configuration file"
	for _, c := range []struct {
		args []string
		code int
	}{{[]string{"config", "check", f}, 1}, {[]string{"run", "--config", f}, 2}} {
		cmd := exec.Command(agentBin, c.args...)
		cmd.Env = append(os.Environ(), "FRAMEPUSH_CONFIG=")
		out, _ := cmd.CombinedOutput()
		if cmd.ProcessState.ExitCode() != c.code || !strings.Contains(string(out), want) {
			t.Errorf("%v: exit %d, output:\n%s\nwant exit %d and %q", c.args, cmd.ProcessState.ExitCode(), out, c.code, want)
		}
	}
}
