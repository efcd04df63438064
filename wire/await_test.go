package wire

import (
	"io"
	"testing"
	"time"
)

// countingConn serves data in one read and counts the reads.
type countingConn struct {
	data  []byte
	reads int
}

func (c *countingConn) Read(p []byte) (int, error) {
	c.reads++
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.data)
	c.data = c.data[n:]
	return n, nil
}

func (c *countingConn) SetReadDeadline(time.Time) error { return nil }

// Waiting for the next request between frames reads into the Decoder's
// buffer: a request that arrives whole costs one read, not a one-byte
// read and another (the receiver's per-frame waste).
func TestDecoderAwaitOneRead(t *testing.T) {
	c := &countingConn{data: []byte("SIZE 5\nhello")}
	d := NewDecoder(c, 0)
	if err := d.Await(time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	req, err := d.ReadRequest(time.Now().Add(time.Second))
	if err != nil || req.Size != 5 {
		t.Fatalf("request %+v, %v", req, err)
	}
	b := make([]byte, 5)
	if _, err := io.ReadFull(d, b); err != nil || string(b) != "hello" {
		t.Fatalf("payload %q, %v", b, err)
	}
	if c.reads != 1 {
		t.Errorf("%d reads for one request and its payload, want 1", c.reads)
	}
	// Already buffered: no read; nothing left: the read's error.
	if err := d.Await(time.Now()); err != io.EOF {
		t.Errorf("Await at the end: %v, want EOF", err)
	}
}
