package view

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/jpeg"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"framepush/receiver"
	"framepush/wire"
)

// jpegFrame is a real, decodable JPEG, different for each i.
func jpegFrame(t testing.TB, i int, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x*255/w + i*37), uint8(y*255/h + i*11), uint8(i * 53), 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 85}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

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

// pusher is one persistent framepush-style connection.
type pusher struct {
	t  testing.TB
	c  net.Conn
	ar *wire.AnswerReader
}

func (e *env) dial(t testing.TB) *pusher {
	t.Helper()
	c, err := net.Dial("tcp", e.recv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &pusher{t: t, c: c, ar: wire.NewAnswerReader(c)}
}

// send delivers one frame with the extension and waits for GOT IMAGE.
func (p *pusher) send(name, id string, data []byte) {
	p.t.Helper()
	m := &wire.Meta{Name: name, ID: id, Time: time.Now()}
	if _, err := p.c.Write(wire.AppendSize(nil, int64(len(data)), m, wire.TermLF)); err != nil {
		p.t.Fatal(err)
	}
	if err := p.ar.Expect(wire.GotSize); err != nil {
		p.t.Fatal(err)
	}
	if _, err := p.c.Write(data); err != nil {
		p.t.Fatal(err)
	}
	if err := p.ar.Expect(wire.GotImage); err != nil {
		p.t.Fatal(err)
	}
}

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
