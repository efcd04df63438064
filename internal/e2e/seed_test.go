package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"framepush/receiver"
)

// seedIntactMax is the largest image the seed server stores whole on Linux
// loopback: one recv(4096) plus one recv(40960000), which returns what the
// socket buffer holds at that moment (126,976 bytes here). Tests that must
// succeed against the seed server stay at or below it.
const seedIntactMax = 126976

// The seed client, unchanged, pairs with framerecv: its "SIZE <n>" has no
// terminator, and the receiver's settle window decides where the number
// ends. Every image arrives byte-identical, large ones included, and the
// client reports success for each.
func TestSeedClientToReceiver(t *testing.T) {
	sizes := []int{1, 5, 4096, 4097, seedIntactMax, seedIntactMax + 1, 200 << 10, 2 << 20}
	payloads := make([][]byte, len(sizes))
	for i, n := range sizes {
		payloads[i] = payload(n, uint64(i))
	}
	files := writeFiles(t, payloads)
	var stored atomic.Int64
	dir := t.TempDir()
	addr, srv := startReceiver(t, receiver.Options{Dir: dir, OnFrame: func(receiver.Stored) { stored.Add(1) }})

	out, err := runSeedClient(t, addr, files...)
	if err != nil {
		t.Fatalf("seed client failed: %v\n%s", err, out)
	}
	if n := strings.Count(out, "Image successfully send to server"); n != len(files) {
		t.Fatalf("seed client reported %d successes for %d images:\n%s", n, len(files), out)
	}
	// GOT IMAGE is sent after the frame is durable, so everything is on
	// disk by now.
	if got := stored.Load(); got != int64(len(files)) {
		t.Fatalf("receiver stored %d frames, want %d", got, len(files))
	}
	if d := manifestOf(payloads).verify(t, dir); d != 0 {
		t.Errorf("%d duplicates from a client that sends each image once", d)
	}
	got, _ := scanStored(t, dir)
	for i, f := range got { // one connection per image, in order: names sort in arrival order
		if f.Size != int64(sizes[i]) {
			t.Errorf("stored file %d is %d bytes, want %d", i, f.Size, sizes[i])
		}
	}
	st := srv.Stats()
	if st.Frames != uint64(len(files)) {
		t.Errorf("receiver counted %d frames, want %d", st.Frames, len(files))
	}
}

// The flaw that motivates framerecv, shown with the seed's own client: the
// seed server reads an image with one recv(4096) and one recv(40960000),
// so a 200 KiB image is cut, yet it answers GOT IMAGE (or resets). The same
// client sending the same file to framerecv gets it stored whole.
func TestSeedServerTruncatesLargeImages(t *testing.T) {
	big := payload(200<<10, 42)
	small := payload(100_000, 43)
	files := writeFiles(t, [][]byte{small, big})

	seed := startSeedServer(t)
	out, err := runSeedClient(t, seed.Addr, files...)
	t.Logf("seed client -> seed server (exit %v):\n%s", err, out)
	// The server writes the file before it answers or closes, and the
	// client returns only after that, so the files are complete now.
	// Its names count accepts and requests: the first image of a fresh
	// server is image3.png, the next image5.png.
	smallGot, err1 := os.ReadFile(filepath.Join(seed.Dir, "image3.png"))
	bigGot, err2 := os.ReadFile(filepath.Join(seed.Dir, "image5.png"))
	if err1 != nil || err2 != nil {
		entries, _ := os.ReadDir(seed.Dir)
		t.Fatalf("seed server files: %v, %v (folder holds %v)", err1, err2, entries)
	}
	if sum(smallGot) != sum(small) {
		t.Errorf("seed server stored the %d-byte image as %d bytes, corrupt", len(small), len(smallGot))
	}
	if len(bigGot) >= len(big) {
		t.Fatalf("seed server stored the whole %d-byte image (%d bytes): the truncation flaw did not show on this machine", len(big), len(bigGot))
	}
	if string(bigGot) != string(big[:len(bigGot)]) {
		t.Errorf("seed server's %d stored bytes are not a prefix of the image", len(bigGot))
	}
	t.Logf("seed server kept %d of %d bytes (%.0f%%)", len(bigGot), len(big), 100*float64(len(bigGot))/float64(len(big)))

	dir := t.TempDir()
	addr, _ := startReceiver(t, receiver.Options{Dir: dir})
	out, err = runSeedClient(t, addr, files...)
	if err != nil || strings.Count(out, "Image successfully send to server") != 2 {
		t.Fatalf("seed client -> framerecv: %v\n%s", err, out)
	}
	if d := manifestOf([][]byte{small, big}).verify(t, dir); d != 0 {
		t.Errorf("%d duplicates", d)
	}
}
