package receiver

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"framepush/wire"
)

// A frame that carries its capture time (the extension's ts) is filed
// under it: date folder, file name and mtime, even when it arrives years
// later. (framerecv used to file it under its arrival time.) Frames with
// the same capture time never replace each other, also across a restart
// whose sequence numbers start again.
func TestCaptureTimeNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	captured := time.Date(2001, 9, 9, 1, 46, 40, 123456789, time.UTC)
	send := func(ts *testServer, p string, meta *wire.Meta) {
		t.Helper()
		c := ts.dial(t)
		if err := sendFrame(c, wire.NewAnswerReader(c), []byte(p), meta, wire.TermLF); err != nil {
			t.Fatal(err)
		}
	}
	ts := startServer(t, Options{Dir: dir})
	send(ts, "first", &wire.Meta{Name: "cam", ID: "r1-1", Time: captured})
	send(ts, "second", &wire.Meta{Name: "cam", ID: "r1-2", Time: captured})
	send(ts, "no ts", &wire.Meta{Name: "cam", ID: "r1-3"})
	if err := ts.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	ts = startServer(t, Options{Dir: dir})
	send(ts, "after restart", &wire.Meta{Name: "cam", ID: "r2-1", Time: captured})

	finals, _ := listFiles(t, dir)
	var old []string
	today := false
	for _, f := range finals {
		if strings.HasPrefix(f, filepath.Join("cam", "2001-09-09")+string(filepath.Separator)) {
			old = append(old, f)
			if !strings.HasPrefix(filepath.Base(f), "20010909T014640.123456789Z-") {
				t.Errorf("file %s is not named after its capture time", f)
			}
			st, err := os.Stat(filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			// Exact where the file system keeps nanoseconds (ext4,
			// tmpfs); others round, but never by a day.
			if d := st.ModTime().Sub(captured); d < -2*time.Second || d > 2*time.Second {
				t.Errorf("%s: mtime %v, want the capture time %v", f, st.ModTime().UTC(), captured)
			}
		} else {
			today = true
			if string(readFile(t, filepath.Join(dir, f))) != "no ts" {
				t.Errorf("unexpected file %s", f)
			}
		}
	}
	if len(old) != 3 || !today {
		t.Fatalf("files %v: want 3 under cam/2001-09-09 and the frame without ts under its arrival day", finals)
	}
	got := map[string]bool{}
	for _, f := range old {
		got[string(readFile(t, filepath.Join(dir, f)))] = true
	}
	for _, p := range []string{"first", "second", "after restart"} {
		if !got[p] {
			t.Errorf("frame %q missing (replaced?): %v", p, got)
		}
	}
}

// Repeated failures of one kind are logged in full up to a burst, then
// summed up once a period; every one is still counted and logged at
// debug. (framerecv used to log one WARN line per timed-out connection.)
func TestRepeatedFailuresAreSummarised(t *testing.T) {
	const conns = 3 * failLogBurst
	ts := startServer(t, Options{HandshakeTimeout: 200 * time.Millisecond, MaxConns: 4 * conns, MaxConnsPerPeer: -1})
	start := time.Now()
	for range conns {
		ts.dial(t) // and say nothing
	}
	waitRejects(t, ts, wire.ReasonTimeout, conns)
	elapsed := time.Since(start)
	const msg = "no complete request within the handshake timeout of a new connection"
	var summed int
	ts.logs.wait(t, "summing up the held-back lines", func(r logRecord) bool {
		return strings.HasPrefix(r.Msg, "repeated failures") && r.Attrs["reason"] == wire.ReasonTimeout && r.Attrs["last"] == msg
	})
	ts.logs.mu.Lock()
	defer ts.logs.mu.Unlock()
	full, debug := 0, 0
	for _, r := range ts.logs.recs {
		switch {
		case r.Msg == msg && r.Level == slog.LevelWarn:
			full++
			if n := r.Attrs["suppressed_since_last"]; n != "" {
				summed += atoi(t, n)
			}
		case r.Msg == msg && r.Level == slog.LevelDebug:
			debug++
		case strings.HasPrefix(r.Msg, "repeated failures") && r.Attrs["reason"] == wire.ReasonTimeout:
			summed += atoi(t, r.Attrs["count"])
		}
	}
	if full+debug != conns {
		t.Fatalf("%d full and %d debug lines for %d connections", full, debug, conns)
	}
	// The burst, plus at most one line a period for the time it took.
	if limit := failLogBurst + int(elapsed/failLogPeriod) + 1; full > limit {
		t.Errorf("%d WARN lines in %v for %d connections, want at most %d", full, elapsed, conns, limit)
	}
	if debug == 0 || summed > debug {
		t.Errorf("%d held back, %d summed up", debug, summed)
	}
}

// One address holding its share of connections idle does not lock
// another out: its next connection is refused with a retryable ERR busy,
// counted as busy-peer, while another peer is served.
func TestPerPeerConnectionShare(t *testing.T) {
	const share = 3
	ts := startServer(t, Options{MaxConns: 16, MaxConnsPerPeer: share, HandshakeTimeout: time.Minute})
	for range share {
		c := ts.dial(t)
		defer c.Close()
	}
	waitActive(t, ts, share)
	c := ts.dial(t)
	got := readAll(t, c)
	if got != "ERR busy max-per-peer=3\n" {
		t.Fatalf("connection over the share: %q", got)
	}
	var re *wire.RejectError
	if _, err := wire.ParseAnswer([]byte(got), wire.GotSize, true); !errors.As(err, &re) || re.Reason != wire.ReasonBusy || re.Permanent() {
		t.Fatalf("answer %q parses as %v, want a retryable ERR busy", got, re)
	}
	if n := ts.Stats().Rejects[ReasonBusyPeer]; n != 1 {
		t.Fatalf("busy-peer rejects %d, want 1", n)
	}
	ts.logs.wait(t, "about the per-peer refusal", func(r logRecord) bool {
		return r.Attrs["reason"] == ReasonBusyPeer && r.Attrs["max_conns_per_peer"] == "3"
	})

	// Another address (127.0.0.2 is loopback too on Linux) is served.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 10 * time.Second}
	other, err := d.Dial("tcp", ts.addr)
	if err != nil {
		t.Skipf("cannot dial from 127.0.0.2 (not Linux loopback?): %v", err)
	}
	defer other.Close()
	_ = other.SetDeadline(time.Now().Add(30 * time.Second))
	if err := sendFrame(other, wire.NewAnswerReader(other), []byte("from another peer"), nil, wire.TermLF); err != nil {
		t.Fatalf("second peer: %v", err)
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("not a count: %q", s)
	}
	return n
}
