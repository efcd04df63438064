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
	"testing"

	"framepush/internal/testutil"
	"framepush/internal/testutil/s3test"
)

// A frame from `framepush send --extension` (SHA-256 announced) is streamed
// into its PUT by default and PUT from memory with --s3-buffered; either
// way it lands byte for byte.
func TestS3StreamingAndBufferedFlag(t *testing.T) {
	gw := s3test.Start(t)
	gw.MakeBucket(t, "frames")
	gw.SetEnv(t)
	for i, buffered := range []bool{false, true} {
		logs := &testutil.Buffer{}
		ctx, cancel := context.WithCancel(context.Background())
		args := []string{"--listen", "127.0.0.1:0", "--store", fmt.Sprintf("s3://frames/run%d", i), "--s3-endpoint", gw.Endpoint,
			"--http", "127.0.0.1:0", "--log-format", "json"}
		if buffered {
			args = append(args, "--s3-buffered")
		}
		code := make(chan int, 1)
		go func() { code <- run(ctx, args, io.Discard, logs) }()
		addr := logValue(t, logs, "receiver listening", "addr")
		readyz := logValue(t, logs, "metrics and health check", "readyz")

		p := filepath.Join(t.TempDir(), "f.jpg")
		b := bytes.Repeat([]byte{7}, 300000)
		copy(b, "\xFF\xD8\xFF\xE0")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(testutil.Binary(t, "framepush"), "send", "--server", addr, "--extension", "--name", "door", p).CombinedOutput(); err != nil {
			t.Fatalf("framepush send: %v\n%s", err, out)
		}
		resp, err := http.Get(strings.TrimSuffix(readyz, "/readyz") + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		metrics, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := "framerecv_store_streamed_puts_total 1"
		if buffered {
			want = "framerecv_store_streamed_puts_total 0"
		}
		if !strings.Contains(string(metrics), want+"\n") {
			t.Errorf("buffered=%v: no %q in /metrics", buffered, want)
		}
		got, _ := listObjects(t, gw, "frames")
		n := 0
		for key, data := range got {
			if strings.HasPrefix(key, fmt.Sprintf("run%d/door/", i)) {
				n++
				if !bytes.Equal(data, b) {
					t.Errorf("buffered=%v: %s differs from the file", buffered, key)
				}
			}
		}
		if n != 1 {
			t.Errorf("buffered=%v: %d objects, want 1", buffered, n)
		}
		cancel()
		if c := <-code; c != 0 {
			t.Fatalf("exit %d:\n%s", c, logs.String())
		}
	}
}
