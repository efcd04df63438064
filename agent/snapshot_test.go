package agent

import (
	"bytes"
	"fmt"
	"image/jpeg"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"framepush/internal/testutil"
)

// /snapshot.jpg and /stream.mjpg serve frames the agent captured, each a
// whole JPEG equal to a frame the receiver got; viewers, one of them
// stalled, cost delivery nothing: every captured frame is delivered.
func TestSnapshotAndStream(t *testing.T) {
	rv := startRecv(t, "127.0.0.1:0", nil)
	c := testConfig(rv.Addr)
	c.HTTP.Listen = "127.0.0.1:0"
	r, _ := startAgent(t, c, Options{})
	base := "http://" + r.a.Addr().String()
	testutil.WaitFor(t, "frames", 30*time.Second, func() bool { return len(rv.Frames()) >= 3 })

	// A viewer that asks for the stream and never reads.
	stalled, err := net.Dial("tcp", r.a.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	fmt.Fprintf(stalled, "GET /stream.mjpg HTTP/1.1\r\nHost: board\r\n\r\n")

	resp, err := http.Get(base + "/snapshot.jpg")
	if err != nil {
		t.Fatal(err)
	}
	snap, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" || resp.Header.Get("ETag") == "" || resp.Header.Get("Last-Modified") == "" {
		t.Fatalf("/snapshot.jpg: %s %v", resp.Status, resp.Header)
	}
	var parts [][]byte
	resp, err = http.Get(base + "/stream.mjpg")
	if err != nil {
		t.Fatal(err)
	}
	mt, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != "multipart/x-mixed-replace" {
		t.Fatalf("/stream.mjpg Content-Type %q", resp.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(resp.Body, params["boundary"])
	for range 5 {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		parts = append(parts, b)
	}
	resp.Body.Close()
	captured := r.a.metrics.captured.Get()
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	st := rv.Frames()
	if uint64(len(st)) != r.a.metrics.captured.Get() {
		t.Fatalf("captured %d frames, delivered %d, with viewers attached", r.a.metrics.captured.Get(), len(st))
	}
	delivered := map[string]bool{}
	for _, s := range st {
		b, err := os.ReadFile(s.Path)
		if err != nil {
			t.Fatal(err)
		}
		delivered[string(b)] = true
	}
	for i, b := range append([][]byte{snap}, parts...) {
		img, err := jpeg.Decode(bytes.NewReader(b))
		if err != nil || img.Bounds().Dx() != 160 {
			t.Fatalf("image %d is not a whole 160-wide JPEG: %v", i, err)
		}
		if !delivered[string(b)] {
			t.Fatalf("image %d is not one of the %d frames delivered", i, len(st))
		}
	}
	if len(parts) < 5 || bytes.Equal(parts[0], parts[4]) {
		t.Fatalf("the stream repeats one frame: %d parts", len(parts))
	}
	t.Logf("%d frames captured by the time the stream was read, %d delivered", captured, len(st))
}

// Before any frame, /snapshot.jpg is a 404 saying so.
func TestSnapshotBeforeAnyFrame(t *testing.T) {
	a, err := New(testConfig(freeAddr(t)), Options{Notify: func(string) {}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: a.Handler()}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Close()
	code, body := get(t, "http://"+ln.Addr().String()+"/snapshot.jpg")
	if code != 404 || body != "no image yet\n" {
		t.Fatalf("/snapshot.jpg before a frame: %d %q", code, body)
	}
}
