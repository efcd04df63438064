package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"framepush/frame"
	"framepush/internal/backoff"
	"framepush/sender"
	"framepush/wire"
)

// seedIntactMin is the smallest image the seed server can take: one of
// 4096 bytes or less fits in its first recv(4096), and the recv(40960000)
// after it waits forever for more (testdata/seed/README.md).
const seedIntactMin = 4097

// quickBackoff keeps retries fast in tests.
var quickBackoff = backoff.Policy{Initial: 5 * time.Millisecond, Max: 100 * time.Millisecond, Multiplier: 2}

func frameOf(seq int, data []byte) frame.Frame {
	return frame.Frame{Data: data, Format: "jpeg", Seq: uint64(seq), Time: time.Now(), Source: "e2e", Trigger: "test"}
}

func newSender(t testing.TB, o sender.Options) *sender.Sender {
	t.Helper()
	if o.Backoff == (backoff.Policy{}) {
		o.Backoff = quickBackoff
	}
	s, err := sender.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

// seedImages lists the seed server's stored images in the order it wrote
// them (its counter grows by two per connection: accept and SIZE).
func seedImages(t testing.TB, dir string) [][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	type img struct {
		n    int
		data []byte
	}
	var imgs []img
	for _, e := range entries {
		num, ok := strings.CutPrefix(e.Name(), "image")
		num, ok2 := strings.CutSuffix(num, ".png")
		n, err := strconv.Atoi(num)
		if !ok || !ok2 || err != nil {
			t.Fatalf("unexpected file %s in the seed server's folder", e.Name())
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, img{n, b})
	}
	slices.SortFunc(imgs, func(a, b img) int { return a.n - b.n })
	out := make([][]byte, len(imgs))
	for i, im := range imgs {
		out[i] = im.data
	}
	return out
}

// The sender pairs with the seed's own server. In seed mode it opens a
// connection per frame, as the seed client does; in auto mode it starts
// persistent, sees the server close after the first GOT IMAGE, and
// switches to one frame per connection without losing or duplicating a
// frame. Sizes stay inside what the seed server stores intact.
func TestSenderToSeedServer(t *testing.T) {
	sizes := []int{seedIntactMin, 5000, 20000, 65536, 100000, seedIntactMax, 9999, 70000, 4200, 123456, 31337, 8192}
	for _, tc := range []struct {
		mode sender.Mode
		term wire.Terminator
	}{
		{sender.ModeSeed, wire.TermNone},
		{sender.ModeAuto, wire.TermNone},
		{sender.ModeAuto, wire.TermLF},
	} {
		t.Run(fmt.Sprintf("mode=%s/term=%v", tc.mode, tc.term), func(t *testing.T) {
			seed := startSeedServer(t)
			s := newSender(t, sender.Options{
				Addresses: []string{seed.Addr}, Mode: tc.mode, Terminator: tc.term,
				AnswerTimeout: 10 * time.Second,
			})
			payloads := make([][]byte, len(sizes))
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			for i, n := range sizes {
				payloads[i] = payload(n, uint64(100+i))
				if err := s.Deliver(ctx, frameOf(i+1, payloads[i])); err != nil {
					t.Fatalf("frame %d (%d bytes): %v", i+1, n, err)
				}
			}
			st := s.Stats()
			if st.Sent != uint64(len(sizes)) {
				t.Errorf("sender counted %d delivered, want %d", st.Sent, len(sizes))
			}
			if st.Mode != sender.ModeSeed {
				t.Errorf("effective mode %q after the seed server closed each connection, want seed", st.Mode)
			}
			if tc.mode == sender.ModeAuto && st.Failures != 0 {
				t.Errorf("auto mode counted %d failures; the switch to one frame per connection is not a failure (last error %q)", st.Failures, st.LastError)
			}
			if st.Connects != uint64(len(sizes)) && tc.mode == sender.ModeSeed {
				t.Errorf("seed mode opened %d connections for %d frames", st.Connects, len(sizes))
			}
			got := seedImages(t, seed.Dir)
			if len(got) != len(payloads) {
				t.Fatalf("seed server stored %d images for %d frames (exactly once expected)", len(got), len(payloads))
			}
			// The seed server stores what one recv() returns after the
			// first 4096 bytes. On loopback that is the whole image up to
			// 126,976 bytes when the sender's bytes are all there at that
			// moment, but a loaded or emulated machine can deliver them
			// late, and the server then stores a prefix (and still answers
			// GOT IMAGE): its flaw, not the sender's. So: every image
			// exactly once, each identical or a true prefix, and most of
			// them whole.
			cut := 0
			for i := range got {
				switch {
				case sum(got[i]) == sum(payloads[i]):
				case len(got[i]) < len(payloads[i]) && bytes.Equal(got[i], payloads[i][:len(got[i])]):
					cut++
					t.Logf("image %d: the seed server kept %d of %d bytes (its single recv)", i+1, len(got[i]), len(payloads[i]))
				default:
					t.Errorf("image %d: stored %d bytes, sent %d; not the payload nor a prefix of it", i+1, len(got[i]), len(payloads[i]))
				}
			}
			if cut > len(got)/4 {
				t.Errorf("%d of %d images cut short: more than the seed server's timing flaw explains", cut, len(got))
			}
			t.Logf("stats: %+v", st)
		})
	}
}

// The seed pair hangs forever on an image of 4096 bytes or less (the
// server's second recv waits for bytes that never come). The sender does
// not: each attempt ends at its answer deadline with a retryable error.
func TestSenderBoundedAgainstSeedServerHang(t *testing.T) {
	seed := startSeedServer(t)
	s := newSender(t, sender.Options{Addresses: []string{seed.Addr}, Mode: sender.ModeSeed, AnswerTimeout: 500 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	err := s.Send(ctx, frameOf(1, payload(1000, 7)))
	took := time.Since(start)
	if err == nil {
		t.Fatal("a 1000-byte frame was acknowledged by the seed server; expected its hang")
	}
	if sender.IsPermanent(err) || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("error %v: want a retryable timeout", err)
	}
	if took > 10*time.Second {
		t.Errorf("Send took %v with a 500ms answer timeout", took)
	}
	t.Logf("Send returned after %v: %v", took.Round(time.Millisecond), err)
}
