package receiver

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"framepush/internal/logging"
	"framepush/wire"
)

// childDirEnv makes the test binary run a receiver instead of the tests:
// the SIGKILL test re-executes itself that way.
const childDirEnv = "RECEIVER_TEST_CHILD_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childDirEnv); dir != "" {
		runChild(dir)
		return
	}
	os.Exit(m.Run())
}

// runChild serves on a loopback port, prints it, and runs until killed.
func runChild(dir string) {
	logger, _ := logging.New(os.Stderr, "text", "info")
	s, err := New(Options{Dir: dir, Logger: logger, MinFreeBytes: -1})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	fmt.Printf("listening %s leftovers %d\n", l.Addr(), s.Stats().LeftoversCleaned)
	_ = s.Serve(l)
	os.Exit(0)
}

// startChild runs a receiver in a child process and returns its address
// and the number of leftovers it cleaned at start.
func startChild(t *testing.T, dir string) (*exec.Cmd, string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("child receiver did not start: %v", err)
	}
	var addr string
	var leftovers int
	if _, err := fmt.Sscanf(line, "listening %s leftovers %d", &addr, &leftovers); err != nil {
		t.Fatalf("child said %q: %v", line, err)
	}
	return cmd, addr, leftovers
}

// SIGKILL while a large frame streams: no file appears under a final name,
// and the next receiver removes the temporary file.
func TestSIGKILLMidFrame(t *testing.T) {
	dir := t.TempDir()
	cmd, addr, _ := startChild(t, dir)

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	ar := wire.NewAnswerReader(c)
	// A stored frame first, so the test also proves finished frames survive.
	if err := sendFrame(c, ar, payload(1000, jpegMagic, 1), nil, wire.TermLF); err != nil {
		t.Fatal(err)
	}
	const size = 32 << 20
	if _, err := c.Write(wire.AppendSize(nil, size, nil, wire.TermLF)); err != nil {
		t.Fatal(err)
	}
	if err := ar.Expect(wire.GotSize); err != nil {
		t.Fatal(err)
	}
	chunk := payload(1<<20, jpegMagic, 2)
	for range 4 {
		if _, err := c.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	// Kill once the temporary file holds part of the frame.
	waitFor(t, "the frame's temporary file to grow", func() bool {
		_, temps := listFiles(t, dir)
		if len(temps) != 1 {
			return false
		}
		st, err := os.Stat(filepath.Join(dir, temps[0]))
		return err == nil && st.Size() >= 1<<20
	})
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	finals, temps := listFiles(t, dir)
	if len(finals) != 1 || len(temps) != 1 {
		t.Fatalf("after SIGKILL: finals %v temps %v, want the first frame and one temporary file", finals, temps)
	}
	if got := readFile(t, filepath.Join(dir, finals[0])); len(got) != 1000 {
		t.Fatalf("stored frame has %d bytes, want 1000", len(got))
	}
	if !strings.HasPrefix(filepath.Base(temps[0]), tempPrefix) {
		t.Fatalf("temporary file %s lacks the %s prefix", temps[0], tempPrefix)
	}

	// A restarted receiver cleans the leftover, and serves.
	_, addr2, cleaned := startChild(t, dir)
	if cleaned != 1 {
		t.Fatalf("restarted receiver cleaned %d leftovers, want 1", cleaned)
	}
	finals2, temps2 := listFiles(t, dir)
	if len(temps2) != 0 || len(finals2) != 1 {
		t.Fatalf("after restart: finals %v temps %v", finals2, temps2)
	}
	c2, err := net.Dial("tcp", addr2)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	_ = c2.SetDeadline(time.Now().Add(30 * time.Second))
	if err := sendFrame(c2, wire.NewAnswerReader(c2), payload(500, "", 3), nil, wire.TermLF); err != nil {
		t.Fatal(err)
	}
	finals3, _ := listFiles(t, dir)
	if len(finals3) != 2 || finals3[1] <= finals3[0] {
		t.Fatalf("after restart: %v, want the new frame sorted after the old one", finals3)
	}
}
