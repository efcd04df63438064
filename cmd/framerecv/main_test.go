package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"framepush/internal/testutil"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// asMainEnv makes the test binary run main() with the arguments after
// "--", so the SIGTERM test exercises the real signal handling.
const asMainEnv = "FRAMERECV_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		for i, a := range os.Args {
			if a == "--" {
				os.Args = append([]string{"framerecv"}, os.Args[i+1:]...)
				break
			}
		}
		main()
		return
	}
	os.Exit(m.Run())
}

// logValue waits for a JSON log line with msg and returns its key.
func logValue(t *testing.T, logs *testutil.Buffer, msg, key string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(logs.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == msg {
				if v, ok := m[key].(string); ok {
					return v
				}
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no %q log line with %s in:\n%s", msg, key, logs.String())
	return ""
}

func seedFrame(t *testing.T, addr, data string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	exchange := func(send, want string) {
		if _, err := io.WriteString(c, send); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(want))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != want {
			t.Fatalf("sent %q, got %q (%v), want %q", send, got, err, want)
		}
	}
	exchange("SIZE "+strconv.Itoa(len(data)), "GOT SIZE")
	exchange(data, "GOT IMAGE")
	io.WriteString(c, "BYE BYE ")
}

func TestRunServesAndStopsCleanly(t *testing.T) {
	dir := t.TempDir()
	logs := &testutil.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"--listen", "127.0.0.1:0", "--dir", dir, "--http", "127.0.0.1:0",
			"--log-format", "json", "--max-frame-size", "512KiB", "--min-free", "0", "--fsync=false"}, io.Discard, logs)
	}()
	addr := logValue(t, logs, "receiver listening", "addr")
	url := logValue(t, logs, "metrics and health check", "url")
	if !strings.Contains(logs.String(), `"max_frame_size":524288`) {
		t.Errorf("startup line lacks the limits: %s", logs.String())
	}
	if !strings.Contains(logs.String(), "fsync is off") {
		t.Errorf("no warning about --fsync=false")
	}
	seedFrame(t, addr, "hello")

	resp, err := http.Get(strings.TrimSuffix(url, "/metrics") + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Fatalf("/healthz: %d %q", resp.StatusCode, body)
	}
	resp, err = http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "framerecv_frames_total 1\n") {
		t.Fatalf("/metrics lacks the frame count:\n%s", body)
	}

	cancel()
	select {
	case c := <-code:
		if c != 0 {
			t.Fatalf("exit code %d, want 0; logs:\n%s", c, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	var files []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if len(files) != 1 {
		t.Fatalf("files %v, want one", files)
	}
}

func TestFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--max-frame-size", "lots"}, {"--max-frame-size", "0"}, {"--min-rate", "0"},
		{"--tls-cert", "a.crt"}, {"--tls-client-ca", "ca.crt"}, {"--log-format", "xml"},
		{"--max-conns", "0"}, {"--max-conns-per-peer", "-2"}, {"--settle", "-1s"}, {"stray"}, {"--no-such-flag"},
	} {
		var stderr bytes.Buffer
		if code := run(context.Background(), args, io.Discard, &stderr); code != 2 {
			t.Errorf("%v: exit code %d, want 2 (stderr %q)", args, code, stderr.String())
		}
		if !strings.HasPrefix(stderr.String(), "framerecv: ") || strings.Count(stderr.String(), "\n") > 2 {
			t.Errorf("%v: want a short clear error, got %q", args, stderr.String())
		}
	}
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"--tls-cert", "/nonexistent.crt", "--tls-key", "/nonexistent.key"}, io.Discard, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "cannot load --tls-cert") {
		t.Errorf("missing certificate: code %d, %q", code, stderr.String())
	}
}

func TestHelpAndVersion(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, &out, io.Discard); code != 0 {
		t.Fatalf("--help exit code %d", code)
	}
	for _, want := range []string{"printf 'SIZE 5' >&3", "--tls-client-ca agents-ca.crt", "-max-frame-size BYTES", "(default 64MiB)", "-max-conns-per-peer", "behind one NAT"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
	out.Reset()
	if code := run(context.Background(), []string{"--version"}, &out, io.Discard); code != 0 || !strings.HasPrefix(out.String(), "framerecv ") {
		t.Fatalf("--version: %d %q", code, out.String())
	}
}

// The real binary path: SIGTERM stops it gracefully with exit code 0.
func TestSIGTERMExitsZero(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$", "--", "--listen", "127.0.0.1:0", "--dir", dir, "--log-format", "json", "--min-free", "0")
	cmd.Env = append(os.Environ(), asMainEnv+"=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	logs := &testutil.Buffer{}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.Write(append(sc.Bytes(), '\n'))
		}
	}()
	addr := logValue(t, logs, "receiver listening", "addr")
	seedFrame(t, addr, "frame")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-drained // the pipe must be read to the end before Wait
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after SIGTERM: %v; logs:\n%s", err, logs.String())
	}
	logValue(t, logs, "shutting down: finishing frames in flight", "level")
	logValue(t, logs, "stopped", "level")
}
