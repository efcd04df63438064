package s3

import (
	"errors"
	"io"
	"testing"
)

// The body never serves the frame's last byte before release, serves it
// and then EOF after, and after abort serves nothing more.
func TestStreamBodyHoldsBackLastByte(t *testing.T) {
	data := []byte("0123456789abcdefghij")
	b := newStreamBody(data)
	p := make([]byte, 64)
	b.arrived(5)
	if n, err := b.Read(p); n != 5 || err != nil || string(p[:n]) != "01234" {
		t.Fatalf("after 5 bytes arrived: %q %v", p[:n], err)
	}
	b.arrived(len(data)) // every byte is in, none verified yet
	n, err := b.Read(p)
	if err != nil || string(p[:n]) != "56789abcdefghi" {
		t.Fatalf("after all arrived: %q %v, want all but the last byte", p[:n], err)
	}
	last := make(chan string, 1)
	go func() {
		q := make([]byte, 64)
		n, _ := b.Read(q) // blocks until release
		last <- string(q[:n])
	}()
	select {
	case got := <-last:
		t.Fatalf("the last byte was served before release: %q", got)
	default:
	}
	b.release()
	if got := <-last; got != "j" {
		t.Fatalf("after release: %q, want the last byte", got)
	}
	if n, err := b.Read(p); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("after the whole frame: %d %v, want EOF", n, err)
	}

	a := newStreamBody(make([]byte, 10))
	a.arrived(10)
	if n, err := a.Read(p[:4]); n != 4 || err != nil {
		t.Fatalf("read before abort: %d %v", n, err)
	}
	a.abort(errAborted)
	if n, err := a.Read(p); n != 0 || !errors.Is(err, errAborted) {
		t.Fatalf("read after abort: %d %v, want 0 and errAborted", n, err)
	}
}
