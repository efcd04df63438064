package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"framepush/receiver"
)

// repoRoot is the module root, two levels up from this package.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found from %s: %v", root, err)
	}
	return root
}

var (
	pythonOnce sync.Once
	pythonPath string
	pythonErr  error
)

// python returns the real python3 interpreter (not a pyenv shim, whose
// start-up would dominate short runs), or skips the test when there is none.
func python(t testing.TB) string {
	t.Helper()
	pythonOnce.Do(func() {
		p, err := exec.LookPath("python3")
		if err != nil {
			pythonErr = err
			return
		}
		out, err := exec.Command(p, "-c", "import sys; print(sys.executable)").Output()
		if err != nil {
			pythonErr = fmt.Errorf("%s does not run: %v", p, err)
			return
		}
		pythonPath = strings.TrimSpace(string(out))
		if pythonPath == "" {
			pythonPath = p
		}
	})
	if pythonErr != nil {
		t.Skipf("python3 is needed to run the seed's Python server and client (testdata/seed), and is not usable here: %v (CI installs it with apt-get install python3)", pythonErr)
	}
	return pythonPath
}

// seedServer is the seed's Python server running as a child process.
type seedServer struct {
	Addr string
	Dir  string
}

// startSeedServer runs testdata/seed/server.py on a free loopback port,
// storing images in a fresh folder. It is killed when the test ends.
func startSeedServer(t testing.TB) *seedServer {
	t.Helper()
	py := python(t)
	dir := t.TempDir()
	cmd := exec.Command(py, "-u", filepath.Join(repoRoot(t), "testdata", "seed", "server.py"),
		"--host", "127.0.0.1", "--port", "0", "--dir", dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start seed server: %v", err)
	}
	lines := make(chan string, 1)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		sc := bufio.NewScanner(stdout)
		first := true
		for sc.Scan() { // the server prints "got size" per image: keep the pipe drained
			if first {
				lines <- sc.Text()
				first = false
			}
		}
		if first {
			close(lines)
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		<-drained
	})
	select {
	case l, ok := <-lines:
		addr, found := strings.CutPrefix(l, "listening on ")
		if !ok || !found {
			t.Fatalf("seed server did not start: first line %q, stderr %q", l, stderr.String())
		}
		return &seedServer{Addr: addr, Dir: dir}
	case <-time.After(30 * time.Second):
		t.Fatalf("seed server printed no address within 30 s; stderr %q", stderr.String())
	}
	return nil
}

// runSeedClient runs testdata/seed/client.py against addr with the given
// files, one connection each, and returns its output and exit error.
func runSeedClient(t testing.TB, addr string, files ...string) (string, error) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append([]string{filepath.Join(repoRoot(t), "testdata", "seed", "client.py"), "--host", host, "--port", port}, files...)
	out, err := exec.CommandContext(ctx, python(t), args...).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("seed client hung for 2 minutes; output:\n%s", out)
	}
	return string(out), err
}

// startReceiver runs a receiver.Server in process on a free loopback port.
func startReceiver(t testing.TB, opt receiver.Options) (string, *receiver.Server) {
	t.Helper()
	if opt.Dir == "" {
		opt.Dir = t.TempDir()
	}
	if opt.MinFreeBytes == 0 {
		opt.MinFreeBytes = -1 // test machines have small /tmp
	}
	s, err := receiver.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return l.Addr().String(), s
}

// payload returns n deterministic pseudo-random bytes for seed. Frames of
// 16 bytes or more start with a JPEG start marker, as camera frames do;
// shorter ones start with seed's bytes instead, so that frames with
// different seeds (below 256 for 1-byte frames) never share content and a
// SHA-256 names one frame.
func payload(n int, seed uint64) []byte {
	r := rand.New(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24), 'e', '2', 'e'}))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	if n >= 16 {
		copy(b, []byte{0xFF, 0xD8, 0xFF, 0xE0})
	} else {
		for i := 0; i < n && i < 8; i++ {
			b[i] = byte(seed >> (8 * i))
		}
	}
	return b
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// writeFiles writes each payload to its own file in a fresh folder and
// returns the paths, in order.
func writeFiles(t testing.TB, payloads [][]byte) []string {
	t.Helper()
	dir := t.TempDir()
	paths := make([]string, len(payloads))
	for i, p := range payloads {
		paths[i] = filepath.Join(dir, fmt.Sprintf("frame-%04d-%d.jpg", i, len(p)))
		if err := os.WriteFile(paths[i], p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return paths
}

// storedFile is a regular file found under a receiver's folder.
type storedFile struct {
	Rel  string
	Size int64
	Sum  string
}

// scanStored lists every regular file under dir, sorted by path (framerecv's
// names sort in arrival order within a client and date folder), and the
// temporary files among them.
func scanStored(t testing.TB, dir string) (files []storedFile, partial []string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !de.Type().IsRegular() {
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		if strings.HasPrefix(de.Name(), ".part-") {
			partial = append(partial, rel)
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files = append(files, storedFile{Rel: rel, Size: int64(len(b)), Sum: sum(b)})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Rel < files[j].Rel })
	return files, partial
}

// manifest is what a test sent: SHA-256 of each frame, in order.
type manifest []string

func manifestOf(payloads [][]byte) manifest {
	m := make(manifest, len(payloads))
	for i, p := range payloads {
		m[i] = sum(p)
	}
	return m
}

// verify checks the stored files against the manifest: no temporary file
// left, every stored file is one of the frames sent (so none is partial or
// corrupt), every frame sent is stored at least once. It returns how many
// stored files are extra copies (at-least-once delivery after a lost ack).
func (m manifest) verify(t testing.TB, dir string) (duplicates int) {
	t.Helper()
	files, partial := scanStored(t, dir)
	if len(partial) > 0 {
		t.Errorf("temporary files left: %v", partial)
	}
	want := make(map[string]int, len(m))
	for i, s := range m {
		if _, ok := want[s]; !ok {
			want[s] = i
		}
	}
	got := make(map[string]int, len(files))
	for _, f := range files {
		if _, ok := want[f.Sum]; !ok {
			t.Errorf("stored file %s (%d bytes) is none of the frames sent: partial or corrupt", f.Rel, f.Size)
			continue
		}
		got[f.Sum]++
	}
	missing := 0
	for s, i := range want {
		if got[s] == 0 {
			missing++
			if missing <= 10 {
				t.Errorf("frame %d (sha256 %s…) was never stored", i, s[:12])
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d frames missing", missing, len(want))
	}
	for _, n := range got {
		duplicates += n - 1
	}
	return duplicates
}
