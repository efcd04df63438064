package e2e

import (
	"bufio"
	"context"
	"framepush/internal/testutil"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binaries builds framepush and framerecv once per test binary run, into a
// folder removed by TestMain.
func binaries(t testing.TB) (framepush, framerecv string) {
	t.Helper()
	return testutil.Binary(t, "framepush"), testutil.Binary(t, "framerecv")
}

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.RemoveBinaries()
	os.Exit(code)
}

var listeningAddr = regexp.MustCompile(`msg="receiver listening" addr=(\S+)`)

// startFramerecv runs the framerecv binary on a free loopback port and
// returns its address; it is stopped with SIGTERM when the test ends, and
// must then exit 0.
func startFramerecv(t *testing.T, bin, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--listen", "127.0.0.1:0", "--dir", dir, "--min-free", "0"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrc := make(chan string, 1)
	var logMu sync.Mutex
	var log strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			logMu.Lock()
			log.WriteString(sc.Text() + "\n")
			logMu.Unlock()
			if m := listeningAddr.FindStringSubmatch(sc.Text()); m != nil && !sent {
				addrc <- m[1]
				sent = true
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		if !sent {
			close(addrc)
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				logMu.Lock()
				t.Errorf("framerecv exited with %v after SIGTERM; log:\n%s", err, log.String())
				logMu.Unlock()
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("framerecv did not stop within 30 s of SIGTERM")
		}
	})
	select {
	case a, ok := <-addrc:
		if !ok {
			t.Fatalf("framerecv exited before listening; log:\n%s", log.String())
		}
		return a
	case <-time.After(30 * time.Second):
		t.Fatal("framerecv did not log its address within 30 s")
	}
	return ""
}

// The two binaries, as a user runs them: `framepush send FILE...` to
// `framerecv`, exit 0, every file stored byte-identical and in order, in
// both the seed's bytes and the terminated line.
func TestFramepushSendToFramerecv(t *testing.T) {
	fp, fr := binaries(t)
	sizes := []int{1, 5, 4096, 65536, seedIntactMax + 1, 200 << 10, 3 << 20, 17}
	payloads := make([][]byte, len(sizes))
	for i, n := range sizes {
		payloads[i] = payload(n, uint64(1000+i))
	}
	files := writeFiles(t, payloads)
	for _, args := range [][]string{
		{},                     // auto mode, the seed's unterminated SIZE
		{"--terminator", "lf"}, // no settle wait
		{"--mode", "seed"},     // one connection per file
		{"--extension", "--checksum", "sha256", "--name", "e2e-cam"}, // verified by framerecv
	} {
		t.Run(strings.Join(append([]string{"args"}, args...), " "), func(t *testing.T) {
			dir := t.TempDir()
			addr := startFramerecv(t, fr, dir)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmdArgs := append(append([]string{"send", "--server", addr}, args...), files...)
			out, err := exec.CommandContext(ctx, fp, cmdArgs...).CombinedOutput()
			if err != nil {
				t.Fatalf("framepush %s: %v\n%s", strings.Join(cmdArgs[:len(cmdArgs)-len(files)], " "), err, out)
			}
			m := manifestOf(payloads)
			if d := m.verify(t, dir); d != 0 {
				t.Errorf("%d duplicates", d)
			}
			stored, _ := scanStored(t, dir)
			for i := range stored {
				if i < len(m) && stored[i].Sum != m[i] {
					t.Errorf("stored file %d (%s) is not file %d: order lost", i, stored[i].Rel, i)
				}
			}
			if len(args) > 0 && args[0] == "--extension" {
				for _, f := range stored {
					if !strings.HasPrefix(f.Rel, "e2e-cam"+string(filepath.Separator)) {
						t.Errorf("frame %s not filed under the extension's name", f.Rel)
					}
				}
			}
		})
	}
}
