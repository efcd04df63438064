package receiver

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"framepush/wire"
)

// memStore keeps frames in memory; its uploads report each Write, and are
// eager when the store says so.
type memStore struct {
	eager  bool
	writes chan int // the size of each Write, as it happens

	mu     sync.Mutex
	frames [][]byte
}

func (m *memStore) Begin(f Frame) (Upload, error) { return &memUpload{m: m}, nil }
func (m *memStore) Ready() error                  { return nil }
func (m *memStore) String() string                { return "memory" }

type memUpload struct {
	m   *memStore
	buf []byte
}

func (u *memUpload) Write(p []byte) (int, error) {
	u.buf = append(u.buf, p...)
	u.m.writes <- len(p)
	return len(p), nil
}

func (u *memUpload) Eager() bool { return u.m.eager }

func (u *memUpload) Commit(ext string) (Committed, error) {
	u.m.mu.Lock()
	u.m.frames = append(u.m.frames, u.buf)
	u.m.mu.Unlock()
	return Committed{Path: "mem:" + ext}, nil
}

func (u *memUpload) Close() {}

// An eager upload gets the payload's bytes as they arrive: the first part
// of a frame reaches the store while the rest is not even sent, so a store
// can start its work (the S3 store's PUT) before the frame is complete. A
// store that is not eager gets full copy buffers, as before.
func TestEagerUploadGetsBytesAsTheyArrive(t *testing.T) {
	st := &memStore{eager: true, writes: make(chan int, 1024)}
	ts := startServer(t, Options{Store: st})
	data := payload(300<<10, "eager", 3)
	c := ts.dial(t)
	ar := wire.NewAnswerReader(c)
	if _, err := c.Write(wire.AppendSize(nil, int64(len(data)), nil, wire.TermLF)); err != nil {
		t.Fatal(err)
	}
	if err := ar.Expect(wire.GotSize); err != nil {
		t.Fatal(err)
	}
	const first = 10 << 10
	if _, err := c.Write(data[:first]); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-st.writes: // before the rest was sent
		if n > first {
			t.Fatalf("first Write of %d bytes, more than the %d sent", n, first)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the eager upload got no bytes while the rest of the frame was not sent")
	}
	if _, err := c.Write(data[first:]); err != nil {
		t.Fatal(err)
	}
	if err := ar.Expect(wire.GotImage); err != nil {
		t.Fatal(err)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.frames) != 1 || !bytes.Equal(st.frames[0], data) {
		t.Fatalf("stored %d frames, want the payload once", len(st.frames))
	}
}

// Not eager: every Write but the last is a full copy buffer.
func TestUploadNotEagerGetsFullBuffers(t *testing.T) {
	st := &memStore{writes: make(chan int, 1024)}
	ts := startServer(t, Options{Store: st})
	data := payload(3*copyBufSize+5, "full", 4)
	c := ts.dial(t)
	if err := sendFrame(c, wire.NewAnswerReader(c), data, nil, wire.TermLF); err != nil {
		t.Fatal(err)
	}
	close(st.writes)
	var sizes []int
	for n := range st.writes {
		sizes = append(sizes, n)
	}
	if len(sizes) != 4 || sizes[0] != copyBufSize || sizes[1] != copyBufSize || sizes[2] != copyBufSize || sizes[3] != 5 {
		t.Fatalf("write sizes %v, want 3 full copy buffers and the rest", sizes)
	}
}
