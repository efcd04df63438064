// Package pushtest pushes frames to a receiver the way a framepush agent
// does (persistent connection, LF-terminated SIZE line with the extension)
// and makes real JPEG frames, for the tests of what consumes stored frames.
package pushtest

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"net"
	"testing"
	"time"

	"framepush/wire"
)

// JPEG is a real, decodable w×h JPEG, different for each i.
func JPEG(t testing.TB, i, w, h int) []byte {
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

// Conn is one persistent connection to a receiver.
type Conn struct {
	t  testing.TB
	c  net.Conn
	ar *wire.AnswerReader
}

// Dial connects to the receiver at addr; the connection is closed at the
// end of the test.
func Dial(t testing.TB, addr string) *Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &Conn{t: t, c: c, ar: wire.NewAnswerReader(c)}
}

// Send delivers one frame named name with id (none when "") and the
// current time as its capture time, and waits for GOT IMAGE. It may be
// called from any goroutine but not concurrently.
func (p *Conn) Send(name, id string, data []byte) error {
	m := &wire.Meta{Name: name, ID: id, Time: time.Now()}
	if _, err := p.c.Write(wire.AppendSize(nil, int64(len(data)), m, wire.TermLF)); err != nil {
		return err
	}
	if err := p.ar.Expect(wire.GotSize); err != nil {
		return err
	}
	if _, err := p.c.Write(data); err != nil {
		return err
	}
	return p.ar.Expect(wire.GotImage)
}

// MustSend is Send failing the test on an error; call it from the test's
// goroutine.
func (p *Conn) MustSend(name, id string, data []byte) {
	p.t.Helper()
	if err := p.Send(name, id, data); err != nil {
		p.t.Fatalf("sending %s %s: %v", name, id, err)
	}
}
