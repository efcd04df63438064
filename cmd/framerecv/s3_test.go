package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"framepush/frame"
	"framepush/internal/testutil"
	"framepush/internal/testutil/s3test"
	"framepush/sender"
	"framepush/wire"
)

// listObjects returns key -> bytes and key -> receiver instance of every
// frame object in bucket.
func listObjects(t *testing.T, gw *s3test.Server, bucket string) (map[string][]byte, map[string]string) {
	t.Helper()
	c := gw.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	data, by := map[string][]byte{}, map[string]string{}
	for info := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
		if info.Err != nil {
			t.Fatal(info.Err)
		}
		if strings.Contains(info.Key, ".framerecv/") {
			continue
		}
		o, err := c.GetObject(ctx, bucket, info.Key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(o)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := o.Stat()
		for k, v := range st.UserMetadata {
			if strings.EqualFold(k, "framepush-receiver") {
				by[info.Key] = v
			}
		}
		data[info.Key] = b
	}
	return data, by
}

// framerecv --store s3:// with credentials in the environment stores what
// `framepush send --extension` sends under PREFIX/<name>/<date>/<hour>/<id>.jpg,
// and serves /readyz.
func TestS3StoreWithFramepushSend(t *testing.T) {
	gw := s3test.Start(t)
	gw.MakeBucket(t, "frames")
	gw.SetEnv(t)
	logs := &testutil.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"--listen", "127.0.0.1:0", "--store", "s3://frames/site", "--s3-endpoint", gw.Endpoint,
			"--http", "127.0.0.1:0", "--log-format", "json", "--s3-instance", "recv-1"}, io.Discard, logs)
	}()
	addr := logValue(t, logs, "receiver listening", "addr")
	url := logValue(t, logs, "metrics and health check", "readyz")
	if got := logValue(t, logs, "receiver listening", "store"); got != "s3://frames/site at "+gw.Endpoint {
		t.Errorf("store in log: %q", got)
	}

	dir := t.TempDir()
	files := []string{}
	payloads := map[string][]byte{}
	mtime := time.Date(2026, 11, 24, 17, 5, 0, 0, time.UTC)
	for i := range 3 {
		p := filepath.Join(dir, fmt.Sprintf("f%d.jpg", i))
		b := bytes.Repeat([]byte{byte(i + 1)}, 30000+i)
		copy(b, "\xFF\xD8\xFF\xE0")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
		payloads[p] = b
	}
	args := append([]string{"send", "--server", addr, "--extension", "--name", "porch"}, files...)
	out, err := exec.Command(testutil.Binary(t, "framepush"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("framepush send: %v\n%s", err, out)
	}
	got, by := listObjects(t, gw, "frames")
	if len(got) != 3 {
		t.Fatalf("bucket holds %d objects, want 3: %v\nsend said: %s", len(got), by, out)
	}
	for key, b := range got {
		if !strings.HasPrefix(key, "site/porch/2026-11-24/17/") || !strings.HasSuffix(key, ".jpg") {
			t.Errorf("key %s: want site/porch/2026-11-24/17/<id>.jpg", key)
		}
		found := false
		for _, p := range payloads {
			found = found || bytes.Equal(p, b)
		}
		if !found {
			t.Errorf("%s holds bytes no file had", key)
		}
		if by[key] != "recv-1" {
			t.Errorf("%s: receiver %q", key, by[key])
		}
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/readyz: %d", resp.StatusCode)
	}
	cancel()
	if c := <-code; c != 0 {
		t.Fatalf("exit %d:\n%s", c, logs.String())
	}
}

// A missing bucket or a refused credential stops framerecv at start with
// exit code 1 and a message that says what to fix.
func TestS3StartupErrorsExit(t *testing.T) {
	gw := s3test.Start(t)
	gw.MakeBucket(t, "frames")
	gw.SetEnv(t)
	try := func(args ...string) (int, string) {
		logs := &testutil.Buffer{}
		c := run(context.Background(), append([]string{"--listen", "127.0.0.1:0", "--s3-endpoint", gw.Endpoint}, args...), io.Discard, logs)
		return c, logs.String()
	}
	if c, log := try("--store", "s3://nope"); c != 1 || !strings.Contains(log, `bucket \"nope\" does not exist`) {
		t.Errorf("missing bucket: exit %d, log %s", c, log)
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
	if c, log := try("--store", "s3://frames"); c != 1 || !strings.Contains(log, "refused the credentials") {
		t.Errorf("bad secret: exit %d, log %s", c, log)
	}
	for _, bad := range [][]string{
		{"--store", "s3://"},
		{"--store", "s3://frames", "--s3-memory", "1MiB", "--max-frame-size", "2MiB"},
		{"--store", "./dir"},
	} {
		if c, _ := try(bad...); c != 2 {
			t.Errorf("%v: exit %d, want 2 (usage)", bad, c)
		}
	}
}

// Two framerecv instances on one bucket, agents spread over them by device
// name; one instance is SIGKILLed mid-stream. Every frame the agents had
// acknowledged, and every frame they went on to deliver through the other
// instance, is in the bucket exactly once, byte for byte; nothing else is.
func TestS3FleetOneReceiverKilled(t *testing.T) {
	gw := s3test.Start(t)
	fleetScenario(t, gw, nil)
}

// TestFleetMinIO is the fleet scenario against MinIO erasure-coded over 4
// drive folders, with one drive made unusable mid-run. Opt-in (make
// fleettest: scripts/fleettest.sh installs MinIO and sets the variables).
func TestFleetMinIO(t *testing.T) {
	if os.Getenv("FRAMEPUSH_FLEETTEST") != "1" {
		t.Skip("opt-in: run `make fleettest` (MinIO erasure-coded, 4 drives)")
	}
	bin := os.Getenv("FRAMEPUSH_MINIO")
	if bin == "" {
		t.Fatal("FRAMEPUSH_MINIO is not set: run `make fleettest`, which installs MinIO and sets it")
	}
	gw := s3test.StartMinIO(t, bin, 4)
	fleetScenario(t, gw, func() {
		// Drive 1 vanishes: its folder is moved away and a file takes
		// its place. EC:2 over 4 drives keeps a write quorum of 3.
		d := gw.Drives[0]
		// Runs on an agent's goroutine: Error, not Fatal.
		if err := os.Rename(d, d+".gone"); err != nil {
			t.Error(err)
		}
		if err := os.WriteFile(d, []byte("not a drive"), 0o644); err != nil {
			t.Error(err)
		}
		t.Logf("drive %s made unusable", d)
	})
	// Erasure-coded: every object has its metadata on each drive; the
	// last frames were written with drive 1 gone.
	for _, key := range []string{"f/cam-00/2026-11-24/09/1.jpg", "f/cam-00/2026-11-24/09/40.jpg"} {
		for _, d := range gw.Drives[1:] {
			if _, err := os.Stat(filepath.Join(d, "fleet", key, "xl.meta")); err != nil {
				t.Errorf("%s not erasure-coded onto %s: %v", key, d, err)
			}
		}
	}
}

// fleetScenario: two framerecv processes on one bucket, agents spread over
// them, one receiver SIGKILLed a third of the way in and midway (if
// breakStore is set) the store damaged; every frame delivered is in the
// bucket once, byte for byte.
func fleetScenario(t *testing.T, gw *s3test.Server, breakStore func()) {
	gw.MakeBucket(t, "fleet")
	gw.SetEnv(t)
	bin := testutil.Binary(t, "framerecv")
	type proc struct {
		cmd  *exec.Cmd
		logs *testutil.Buffer
		addr string
		done chan struct{}
	}
	startRecv := func(name string) *proc {
		p := &proc{logs: &testutil.Buffer{}, done: make(chan struct{})}
		p.cmd = exec.Command(bin, "--listen", "127.0.0.1:0", "--store", "s3://fleet/f", "--s3-endpoint", gw.Endpoint,
			"--s3-instance", name, "--log-format", "json")
		p.cmd.Stderr = p.logs
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { _ = p.cmd.Wait(); close(p.done) }()
		t.Cleanup(func() { _ = p.cmd.Process.Kill(); <-p.done })
		p.addr = logValue(t, p.logs, "receiver listening", "addr")
		return p
	}
	a, b := startRecv("recv-a"), startRecv("recv-b")
	addrs := []string{a.addr, b.addr}

	const agents, perAgent = 6, 40
	var (
		mu        sync.Mutex
		delivered = map[string][]byte{}
		onA       = 0
	)
	var wg sync.WaitGroup
	killAt := make(chan struct{})
	var killOnce sync.Once
	for i := range agents {
		name := fmt.Sprintf("cam-%02d", i)
		s, err := sender.New(sender.Options{Addresses: addrs, SpreadKey: name, Extension: true, Name: name,
			Checksum: wire.ChecksumSHA256, Terminator: wire.TermLF, ConnectTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if s.Stats().Address == a.addr {
			onA++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.Close(context.Background())
			base := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
			for seq := uint64(1); seq <= perAgent; seq++ {
				data := bytes.Repeat([]byte{byte(seq), byte(i)}, 8000+int(seq))
				copy(data, "\xFF\xD8\xFF\xE0")
				f := frame.Frame{Data: data, Seq: seq, Time: base.Add(time.Duration(seq) * time.Second)}
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				err := s.Deliver(ctx, f)
				cancel()
				if err != nil {
					t.Errorf("%s frame %d: %v", name, seq, err)
					return
				}
				mu.Lock()
				delivered[fmt.Sprintf("f/%s/2026-11-24/09/%d.jpg", name, seq)] = data
				n := len(delivered)
				mu.Unlock()
				if n == agents*perAgent/3 {
					killOnce.Do(func() { close(killAt) })
				}
				if n == agents*perAgent/2 && breakStore != nil {
					breakStore()
				}
			}
		}()
	}
	if onA == 0 || onA == agents {
		t.Fatalf("%d of %d agents start at receiver A: not spread", onA, agents)
	}
	<-killAt
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-a.done
	wg.Wait()

	got, by := listObjects(t, gw, "fleet")
	mu.Lock()
	defer mu.Unlock()
	if len(delivered) != agents*perAgent {
		t.Fatalf("%d frames delivered, want %d", len(delivered), agents*perAgent)
	}
	for key, data := range delivered {
		b, ok := got[key]
		if !ok {
			t.Fatalf("delivered frame %s is not in the bucket", key)
		}
		if !bytes.Equal(b, data) {
			t.Fatalf("%s: %d bytes differ from the %d sent", key, len(b), len(data))
		}
	}
	for key := range got {
		if _, ok := delivered[key]; !ok {
			t.Errorf("unexpected object %s (a partial or second copy?)", key)
		}
	}
	count := map[string]int{}
	for _, r := range by {
		count[r]++
	}
	if count["recv-a"] == 0 || count["recv-b"] == 0 {
		t.Errorf("objects per receiver %v: both should have stored some", count)
	}
	t.Logf("objects per receiver: %v", count)
}
