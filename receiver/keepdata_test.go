package receiver

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"framepush/internal/testutil"
	"framepush/wire"
)

// KeepData hands the payload of frames up to its size to OnFrame, equal to
// what was stored, and leaves Data nil above it or when unset.
func TestKeepDataPassesThePayload(t *testing.T) {
	var mu sync.Mutex
	var stored []Stored
	ts := startServer(t, Options{KeepData: 100000, OnFrame: func(s Stored) { mu.Lock(); stored = append(stored, s); mu.Unlock() }})
	c := ts.dial(t)
	ar := wire.NewAnswerReader(c)
	small := payload(70000, jpegMagic, 1) // several read buffers
	big := payload(100001, jpegMagic, 2)
	began := time.Now()
	for _, p := range [][]byte{small, big} {
		// Captured an hour ago: the file is named after that, Stamp is
		// when the frame became durable.
		if err := sendFrame(c, ar, p, &wire.Meta{Name: "cam", Time: began.Add(-time.Hour)}, wire.TermLF); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(stored) != 2 {
		t.Fatalf("%d frames stored, want 2", len(stored))
	}
	if !bytes.Equal(stored[0].Data, small) || !bytes.Equal(readFile(t, stored[0].Path), small) {
		t.Fatalf("Data of the 70000-byte frame: %d bytes, not the payload", len(stored[0].Data))
	}
	if stored[1].Data != nil {
		t.Fatalf("Data of a frame over KeepData: %d bytes, want nil", len(stored[1].Data))
	}
	if stored[0].Stamp.Before(began) || !stored[1].Stamp.After(stored[0].Stamp) {
		t.Fatalf("stamps %v, %v: want increasing arrival stamps", stored[0].Stamp, stored[1].Stamp)
	}
}

func TestNoKeepDataNoPayload(t *testing.T) {
	got := make(chan Stored, 1)
	ts := startServer(t, Options{OnFrame: func(s Stored) { got <- s }})
	c := ts.dial(t)
	if err := sendFrame(c, wire.NewAnswerReader(c), payload(500, jpegMagic, 1), nil, wire.TermLF); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s.Data != nil {
		t.Fatalf("Data without KeepData: %d bytes", len(s.Data))
	}
}

// Payloads held for Stored.Data by frames in flight stay within
// KeepDataInFlight: with one frame stuck mid-payload holding the budget,
// another frame is stored and acknowledged with Data nil; once the stuck
// one fails, the budget is free again.
func TestKeepDataInFlightBound(t *testing.T) {
	got := make(chan Stored, 4)
	ts := startServer(t, Options{KeepData: 60000, KeepDataInFlight: 100000, OnFrame: func(s Stored) { got <- s }})
	stuck := ts.dial(t)
	if _, err := stuck.Write(wire.AppendSize(nil, 60000, nil, wire.TermLF)); err != nil {
		t.Fatal(err)
	}
	if s := readN(t, stuck, len(wire.GotSize)); s != wire.GotSize {
		t.Fatalf("stuck client got %q", s)
	}
	stuck.Write(payload(1000, jpegMagic, 1)) // and then nothing

	c := ts.dial(t)
	ar := wire.NewAnswerReader(c)
	p := payload(50000, jpegMagic, 2)
	if err := sendFrame(c, ar, p, nil, wire.TermLF); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s.Data != nil {
		t.Fatalf("a frame over the in-flight budget came with %d bytes of Data", len(s.Data))
	}
	stuck.Close()
	testutil.WaitFor(t, "the stuck frame's budget to be released", 10*time.Second, func() bool { return ts.keeping.Load() == 0 })
	if err := sendFrame(c, ar, p, nil, wire.TermLF); err != nil {
		t.Fatal(err)
	}
	if s := <-got; !bytes.Equal(s.Data, p) {
		t.Fatalf("after the stuck frame failed: Data %d bytes, want the payload", len(s.Data))
	}
}
