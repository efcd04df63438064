package view

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"framepush/internal/testutil/pushtest"
	"framepush/receiver"
)

// env is a real receiver on loopback feeding Devices, and its HTTP side
// served by net/http on loopback.
type env struct {
	d    *Devices
	recv string // receiver address
	web  *httptest.Server
	dir  string
}

func start(t *testing.T, o Options, hook func(receiver.Stored)) *env {
	t.Helper()
	e := &env{d: New(o), dir: t.TempDir()}
	srv, err := receiver.New(receiver.Options{
		Dir: e.dir, NoFsync: true, MinFreeBytes: -1, KeepData: 8 << 20,
		Logger: slog.New(slog.DiscardHandler),
		OnFrame: func(s receiver.Stored) {
			e.d.Record(s)
			if hook != nil {
				hook(s)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.recv = ln.Addr().String()
	go srv.Serve(ln)
	ctx, cancel := context.WithCancel(context.Background())
	e.web = httptest.NewServer(e.d.Handler(ctx, HandlerOptions{Title: "test receiver"}))
	t.Cleanup(func() {
		cancel()
		e.web.Close()
		sctx, c2 := context.WithTimeout(context.Background(), 10*time.Second)
		defer c2()
		srv.Shutdown(sctx)
	})
	return e
}

func (e *env) dial(t testing.TB) *pushtest.Conn { return pushtest.Dial(t, e.recv) }

func get(t testing.TB, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp, b.Bytes()
}
