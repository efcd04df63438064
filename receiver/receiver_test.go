package receiver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"hash/crc32"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"framepush/internal/testutil"
	"framepush/wire"
)

var finalName = regexp.MustCompile(`^([^/]+)/(\d{4}-\d{2}-\d{2})/(\d{8}T\d{6}\.\d{9}Z)-(\d{6,})\.(jpg|png|bin)$`)

// The seed client's exact bytes: unterminated SIZE, answers without
// terminators, BYE BYE, and nothing else from the server.
func TestSeedClientByteExact(t *testing.T) {
	ts := startServer(t, Options{})
	c := ts.dial(t)
	mustWrite(t, c, "SIZE 5")
	if got := readN(t, c, len(wire.GotSize)); got != "GOT SIZE" {
		t.Fatalf("answer %q, want GOT SIZE", got)
	}
	mustWrite(t, c, "hello")
	if got := readN(t, c, len(wire.GotImage)); got != "GOT IMAGE" {
		t.Fatalf("answer %q, want GOT IMAGE", got)
	}
	mustWrite(t, c, "BYE BYE ")
	if rest := readAll(t, c); rest != "" {
		t.Fatalf("server sent %q after GOT IMAGE, want nothing", rest)
	}
	finals, _ := listFiles(t, ts.dir)
	if len(finals) != 1 {
		t.Fatalf("files %v, want one", finals)
	}
	m := finalName.FindStringSubmatch(filepath.ToSlash(finals[0]))
	if m == nil || m[1] != "127.0.0.1" || m[5] != "bin" {
		t.Fatalf("file name %q does not match DIR/127.0.0.1/<date>/<stamp>-<seq>.bin", finals[0])
	}
	if m[2] != time.Now().UTC().Format("2006-01-02") && m[2] != time.Now().UTC().Add(-time.Minute).Format("2006-01-02") {
		t.Errorf("date folder %s is not today (UTC)", m[2])
	}
	if got := readFile(t, filepath.Join(ts.dir, finals[0])); string(got) != "hello" {
		t.Fatalf("stored %q, want hello", got)
	}
	st := ts.Stats()
	if st.Frames != 1 || st.Bytes != 5 || len(st.Rejects) != 0 {
		t.Fatalf("stats %+v, want 1 frame of 5 bytes and no rejects", st)
	}
}

// A seed-style client that closes right after GOT IMAGE, without BYE.
func TestClientClosesAfterGotImage(t *testing.T) {
	ts := startServer(t, Options{})
	for i := range 3 {
		c := ts.dial(t)
		ar := wire.NewAnswerReader(c)
		if err := sendFrame(c, ar, payload(1000+i, jpegMagic, byte(i)), nil, wire.TermNone); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	waitFrames(t, ts, 3)
	finals, _ := listFiles(t, ts.dir)
	if len(finals) != 3 {
		t.Fatalf("files %v, want 3", finals)
	}
	for i, f := range finals {
		if !strings.HasSuffix(f, ".jpg") {
			t.Errorf("%s: want .jpg from the JPEG magic", f)
		}
		if got := readFile(t, filepath.Join(ts.dir, f)); !bytes.Equal(got, payload(1000+i, jpegMagic, byte(i))) {
			t.Errorf("%s: content differs from frame %d", f, i)
		}
	}
	if st := ts.Stats(); len(st.Rejects) != 0 {
		t.Fatalf("rejects %v, want none", st.Rejects)
	}
}

// Many frames on one connection, mixed terminators and sizes; names sort
// in the order the frames were sent.
func TestPersistentConnection(t *testing.T) {
	ts := startServer(t, Options{})
	c := ts.dial(t)
	ar := wire.NewAnswerReader(c)
	var sent [][]byte
	terms := []wire.Terminator{wire.TermLF, wire.TermCRLF, wire.TermNone}
	for i := range 12 {
		p := payload(1+i*40000, pngMagic, byte(i))
		if err := sendFrame(c, ar, p, nil, terms[i%3]); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		sent = append(sent, p)
	}
	mustWrite(t, c, wire.Bye)
	if rest := readAll(t, c); rest != "" {
		t.Fatalf("server sent %q after BYE", rest)
	}
	checkStoredInOrder(t, ts.dir, sent)
}

// A client writing one byte per write: the SIZE line, the payload, BYE.
func TestOneByteSegments(t *testing.T) {
	// The settle window must outlast the gap between two writes even on a
	// loaded machine, since the unterminated number is sent a digit at a time.
	ts := startServer(t, Options{Settle: 300 * time.Millisecond})
	c := ts.dial(t)
	c.(*net.TCPConn).SetNoDelay(true)
	ar := wire.NewAnswerReader(c)
	var sent [][]byte
	for i, term := range []wire.Terminator{wire.TermLF, wire.TermNone, wire.TermCRLF} {
		p := payload(300+i, "", byte(i))
		for _, b := range wire.AppendSize(nil, int64(len(p)), nil, term) {
			mustWrite(t, c, string([]byte{b}))
		}
		if err := ar.Expect(wire.GotSize); err != nil {
			t.Fatal(err)
		}
		for _, b := range p {
			mustWrite(t, c, string([]byte{b}))
		}
		if err := ar.Expect(wire.GotImage); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, p)
	}
	for _, b := range []byte(wire.Bye) {
		mustWrite(t, c, string([]byte{b}))
	}
	if rest := readAll(t, c); rest != "" {
		t.Fatalf("server sent %q after BYE", rest)
	}
	checkStoredInOrder(t, ts.dir, sent)
}

// Image bytes glued to a terminated SIZE line are image data, and several
// whole frames glued in one write are all stored.
func TestGluedMessages(t *testing.T) {
	ts := startServer(t, Options{})
	c := ts.dial(t)
	mustWrite(t, c, "SIZE 5\nhello")
	if got := readN(t, c, len("GOT SIZEGOT IMAGE")); got != "GOT SIZEGOT IMAGE" {
		t.Fatalf("answers %q", got)
	}
	mustWrite(t, c, "SIZE 3\nabcSIZE 2\r\nde\nSIZE 4 name=glued\nwxyzBYE BYE ")
	if got := readAll(t, c); got != "GOT SIZEGOT IMAGEGOT SIZEGOT IMAGEGOT SIZEGOT IMAGE" {
		t.Fatalf("answers %q", got)
	}
	finals, _ := listFiles(t, ts.dir)
	var contents []string
	for _, f := range finals {
		contents = append(contents, string(readFile(t, filepath.Join(ts.dir, f))))
	}
	// "SIZE 2\r\n" is followed by its payload "de"; the "\n" after it is
	// leading whitespace before the next SIZE.
	want := []string{"hello", "abc", "de", "wxyz"}
	if fmt.Sprint(contents) != fmt.Sprint(want) {
		t.Fatalf("stored %q (files %v), want %q", contents, finals, want)
	}
	if !strings.HasPrefix(finals[3], "glued/") {
		t.Errorf("frame with name=glued stored as %s", finals[3])
	}
}

// An unterminated SIZE is answered once the settle window passes.
func TestUnterminatedSizeSettles(t *testing.T) {
	ts := startServer(t, Options{Settle: 50 * time.Millisecond})
	c := ts.dial(t)
	mustWrite(t, c, "SIZE 12")
	if got := readN(t, c, 8); got != wire.GotSize {
		t.Fatalf("answer %q", got)
	}
	mustWrite(t, c, "hello world!")
	if got := readN(t, c, 9); got != wire.GotImage {
		t.Fatalf("answer %q", got)
	}
}

// name= files frames under that folder; sha256 and crc32c are verified.
func TestExtensionNameAndChecksum(t *testing.T) {
	var mu sync.Mutex
	var stored []Stored
	ts := startServer(t, Options{OnFrame: func(s Stored) { mu.Lock(); stored = append(stored, s); mu.Unlock() }})
	c := ts.dial(t)
	ar := wire.NewAnswerReader(c)

	jpg := payload(70000, jpegMagic, 1)
	m1 := wire.Meta{Name: "porch-cam", ID: "f1", Time: time.Unix(1732425600, 5), HasSHA256: true, SHA256: sha256.Sum256(jpg)}
	if err := sendFrame(c, ar, jpg, &m1, wire.TermNone); err != nil {
		t.Fatal(err)
	}
	png := payload(3000, pngMagic, 2)
	m2 := wire.Meta{Name: "porch-cam", HasCRC32C: true, CRC32C: crc32.Checksum(png, wire.Castagnoli)}
	if err := sendFrame(c, ar, png, &m2, wire.TermLF); err != nil {
		t.Fatal(err)
	}
	finals, _ := listFiles(t, ts.dir)
	if len(finals) != 2 || !strings.HasPrefix(finals[0], "porch-cam/") || !strings.HasSuffix(finals[0], ".jpg") || !strings.HasSuffix(finals[1], ".png") {
		t.Fatalf("files %v, want porch-cam/<date>/….jpg and ….png", finals)
	}
	mu.Lock()
	if len(stored) != 2 || stored[0].Meta.ID != "f1" || stored[0].Client != "porch-cam" || stored[0].Size != 70000 ||
		stored[0].Path != filepath.Join(ts.dir, finals[0]) || stored[0].Peer != c.LocalAddr().String() {
		t.Fatalf("OnFrame got %+v", stored)
	}
	mu.Unlock()

	// A mismatch: answered, logged, counted, nothing stored.
	bad := payload(5000, "", 3)
	m3 := wire.Meta{HasSHA256: true, SHA256: sha256.Sum256([]byte("something else"))}
	err := sendFrame(c, ar, bad, &m3, wire.TermLF)
	re, ok := err.(*wire.RejectError)
	if !ok || re.Reason != wire.ReasonChecksum || !strings.HasPrefix(re.Detail, "sha256 mismatch: announced ") {
		t.Fatalf("checksum mismatch gave %v, want ERR checksum sha256 mismatch…", err)
	}
	rec := ts.logs.forPeer(t, c.LocalAddr().String())
	if rec.Attrs["reason"] != wire.ReasonChecksum || !strings.Contains(rec.Attrs["error"], "sha256 mismatch") {
		t.Fatalf("log %q %v", rec.Msg, rec.Attrs)
	}
	if readAll(t, c) != "" {
		t.Fatal("server sent more after ERR")
	}
	waitRejects(t, ts, wire.ReasonChecksum, 1)
	if finals2, temps := listFiles(t, ts.dir); len(finals2) != 2 || len(temps) != 0 {
		t.Fatalf("after mismatch: files %v, temps %v", finals2, temps)
	}

	c2 := ts.dial(t)
	ar2 := wire.NewAnswerReader(c2)
	crcBad := wire.Meta{Name: "x", HasCRC32C: true, CRC32C: 1}
	if err := sendFrame(c2, ar2, []byte("payload"), &crcBad, wire.TermLF); err == nil || !strings.Contains(err.Error(), "crc32c mismatch") {
		t.Fatalf("crc32c mismatch gave %v", err)
	}
	waitRejects(t, ts, wire.ReasonChecksum, 2)
}

func TestDiskFloor(t *testing.T) {
	ts := startServer(t, Options{MinFreeBytes: 1 << 62})
	c := ts.dial(t)
	mustWrite(t, c, "SIZE 10\n")
	got := readAll(t, c)
	if !regexp.MustCompile(`^ERR disk-full free=\d+ floor=4611686018427387904\n$`).MatchString(got) {
		t.Fatalf("answer %q, want ERR disk-full free=<n> floor=<n>", got)
	}
	rec := ts.logs.forPeer(t, c.LocalAddr().String())
	if rec.Attrs["reason"] != wire.ReasonDiskFull {
		t.Fatalf("log %v", rec.Attrs)
	}
	if finals, _ := listFiles(t, ts.dir); len(finals) != 0 {
		t.Fatalf("files %v", finals)
	}
	rr := httptest.NewRecorder()
	ts.Handler().ServeHTTP(rr, httptest.NewRequest("GET", "/healthz", nil))
	if rr.Code != http.StatusServiceUnavailable || !strings.Contains(rr.Body.String(), "disk below floor") {
		t.Fatalf("/healthz %d %q, want 503 disk below floor", rr.Code, rr.Body.String())
	}
}

func TestLeftoversCleanedAtStart(t *testing.T) {
	dir := t.TempDir()
	day := filepath.Join(dir, "cam", "2024-01-01")
	if err := os.MkdirAll(day, 0o755); err != nil {
		t.Fatal(err)
	}
	keep := filepath.Join(day, "20240101T000000.000000000Z-000001.jpg")
	for _, p := range []string{keep, filepath.Join(day, ".part-123"), filepath.Join(dir, ".part-x")} {
		if err := os.WriteFile(p, []byte("data"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	logs := &logSink{}
	s, err := New(Options{Dir: dir, Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Stats().LeftoversCleaned; got != 2 {
		t.Fatalf("LeftoversCleaned %d, want 2", got)
	}
	finals, temps := listFiles(t, dir)
	if len(temps) != 0 || len(finals) != 1 {
		t.Fatalf("after start: files %v temps %v", finals, temps)
	}
	logs.wait(t, "about the removed leftover", func(r logRecord) bool {
		return strings.Contains(r.Msg, "temporary file left") && r.Attrs["path"] == filepath.Join(day, ".part-123")
	})
	rr := httptest.NewRecorder()
	s.Handler().ServeHTTP(rr, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rr.Body.String(), "framerecv_leftovers_cleaned_total 2\n") {
		t.Fatalf("/metrics lacks the leftover count:\n%s", rr.Body.String())
	}
}

func TestMetricsAndHealth(t *testing.T) {
	ts := startServer(t, Options{})
	c := ts.dial(t)
	ar := wire.NewAnswerReader(c)
	if err := sendFrame(c, ar, []byte("12345"), nil, wire.TermLF); err != nil {
		t.Fatal(err)
	}
	c2 := ts.dial(t)
	mustWrite(t, c2, "SIZE abc")
	readAll(t, c2)
	c2.Close()
	waitRejects(t, ts, wire.ReasonBadSize, 1)
	waitActive(t, ts, 1)

	rr := httptest.NewRecorder()
	ts.Handler().ServeHTTP(rr, httptest.NewRequest("GET", "/metrics", nil))
	body := rr.Body.String()
	for _, want := range []string{
		"framerecv_frames_total 1\n", "framerecv_bytes_total 5\n",
		`framerecv_rejects_total{reason="bad-size"} 1` + "\n",
		`framerecv_rejects_total{reason="busy"} 0` + "\n",
		"framerecv_connections_active 1\n", "framerecv_connections_total 2\n",
		"framerecv_leftovers_cleaned_total 0\n", "framerecv_frame_seconds_count 1\n",
		"process_resident_memory_bytes",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	rr = httptest.NewRecorder()
	ts.Handler().ServeHTTP(rr, httptest.NewRequest("GET", "/healthz", nil))
	if rr.Code != 200 || rr.Body.String() != "ok\n" {
		t.Fatalf("/healthz %d %q", rr.Code, rr.Body.String())
	}
	if st := ts.Stats(); st.ActiveConns != 1 || st.Conns != 2 || st.Frames != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// Shutdown lets a frame in flight finish and be acknowledged, closes idle
// connections at once, and refuses new frames.
func TestShutdownGraceful(t *testing.T) {
	ts := startServer(t, Options{})
	idle := ts.dial(t)
	busy := ts.dial(t)
	ar := wire.NewAnswerReader(busy)
	mustWrite(t, busy, "SIZE 10\n")
	if err := ar.Expect(wire.GotSize); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, busy, "01234")
	waitActive(t, ts, 2)

	done := make(chan error, 1)
	go func() { done <- ts.Shutdown(context.Background()) }()
	// The idle connection is closed without a word.
	if got := readAll(t, idle); got != "" {
		t.Fatalf("idle connection got %q", got)
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v with a frame in flight", err)
	default:
	}
	mustWrite(t, busy, "56789")
	if err := ar.Expect(wire.GotImage); err != nil {
		t.Fatalf("frame in flight at shutdown: %v", err)
	}
	if got := readAll(t, busy); got != "" {
		t.Fatalf("after the last frame got %q", got)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, err := net.Dial("tcp", ts.addr); err == nil {
		t.Fatal("still accepting after Shutdown")
	}
	finals, _ := listFiles(t, ts.dir)
	if len(finals) != 1 {
		t.Fatalf("files %v", finals)
	}
	rr := httptest.NewRecorder()
	ts.Handler().ServeHTTP(rr, httptest.NewRequest("GET", "/healthz", nil))
	if rr.Code != http.StatusServiceUnavailable {
		t.Fatalf("/healthz after shutdown: %d", rr.Code)
	}
}

// When the Shutdown deadline passes, frames in flight are cut off and
// their temporary files removed.
func TestShutdownDeadline(t *testing.T) {
	ts := startServer(t, Options{})
	c := ts.dial(t)
	ar := wire.NewAnswerReader(c)
	mustWrite(t, c, "SIZE 1000000\n")
	if err := ar.Expect(wire.GotSize); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, c, strings.Repeat("x", 1000))
	waitTemps(t, ts.dir, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ts.Shutdown(ctx); err != context.Canceled {
		t.Fatalf("Shutdown: %v, want context.Canceled", err)
	}
	finals, temps := listFiles(t, ts.dir)
	if len(finals) != 0 || len(temps) != 0 {
		t.Fatalf("files %v temps %v", finals, temps)
	}
}

func TestIdleTimeoutClosesQuietly(t *testing.T) {
	ts := startServer(t, Options{IdleTimeout: 100 * time.Millisecond})
	c := ts.dial(t)
	ar := wire.NewAnswerReader(c)
	if err := sendFrame(c, ar, []byte("abc"), nil, wire.TermLF); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, c); got != "" {
		t.Fatalf("idle close sent %q", got)
	}
	ts.logs.wait(t, "about the idle close", func(r logRecord) bool { return r.Msg == "closing idle connection" })
	if st := ts.Stats(); st.IdleClosed != 1 || len(st.Rejects) != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestOptionsValidation(t *testing.T) {
	for _, o := range []Options{{}, {Dir: "x", MaxConns: -1}, {Dir: "x", MinRate: -5}, {Dir: "x", IdleTimeout: -1}} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, nil, 0o644)
	if _, err := New(Options{Dir: file}); err == nil {
		t.Error("New accepted a file as Dir")
	}
}

func TestNamesSortAndNeverCollide(t *testing.T) {
	var n namer
	base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := []time.Time{base, base, base.Add(-time.Hour), base.Add(time.Nanosecond), base.Add(time.Second)}
	var names []string
	for _, now := range clock {
		stamp, seq := n.next(now)
		names = append(names, fileName(stamp, seq, "jpg"))
	}
	for i := 1; i < len(names); i++ {
		if names[i] <= names[i-1] {
			t.Fatalf("names do not strictly increase: %q then %q", names[i-1], names[i])
		}
	}
	if names[0] != "20250301T120000.000000000Z-000001.jpg" {
		t.Fatalf("first name %q", names[0])
	}
	if got := fileName(base, 1234567, "bin"); got != "20250301T120000.000000000Z-1234567.bin" {
		t.Fatalf("%q", got)
	}
}

func TestPeerFolder(t *testing.T) {
	for addr, want := range map[string]string{
		"192.168.1.5:4000":      "192.168.1.5",
		"[::1]:4000":            "__1",
		"[2001:db8::7]:1":       "2001_db8__7",
		"[::ffff:10.0.0.1]:1":   "10.0.0.1",
		"[fe80::1%eth0]:9":      "fe80__1_eth0",
		"[fe80::1%../../etc]:9": "fe80__1_.._.._etc",
		"pipe":                  "pipe",
		"..":                    "unknown",
		"host with spaces:1":    "host_with_spaces",
	} {
		if got := peerFolder(fakeAddr(addr)); got != want {
			t.Errorf("peerFolder(%q) = %q, want %q", addr, got, want)
		}
	}
}

func TestExtFromMagic(t *testing.T) {
	for head, want := range map[string]string{jpegMagic: "jpg", pngMagic: "png", "\xFF\xD8": "bin", "GIF89a": "bin", "": "bin"} {
		if got := extFor([]byte(head)); got != want {
			t.Errorf("extFor(%q) = %s, want %s", head, got, want)
		}
	}
}

type fakeAddr string

func (a fakeAddr) Network() string { return "tcp" }
func (a fakeAddr) String() string  { return string(a) }

func mustWrite(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := c.Write([]byte(s)); err != nil {
		t.Fatalf("write %q: %v", s, err)
	}
}

// checkStoredInOrder asserts that the files, sorted by name, hold sent.
func checkStoredInOrder(t *testing.T, dir string, sent [][]byte) {
	t.Helper()
	finals, temps := listFiles(t, dir)
	if len(finals) != len(sent) || len(temps) != 0 {
		t.Fatalf("%d files (%d temps), want %d", len(finals), len(temps), len(sent))
	}
	for i, f := range finals {
		if got := readFile(t, filepath.Join(dir, f)); !bytes.Equal(got, sent[i]) {
			t.Fatalf("file %d (%s) holds %d bytes that differ from frame %d", i, f, len(got), i)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, what, 20*time.Second, cond)
}

func waitFrames(t *testing.T, ts *testServer, n uint64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d frames", n), func() bool { return ts.Stats().Frames >= n })
}

func waitRejects(t *testing.T, ts *testServer, reason string, n uint64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d rejects for %s", n, reason), func() bool { return ts.Stats().Rejects[reason] >= n })
}

func waitActive(t *testing.T, ts *testServer, n int64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d active connections", n), func() bool { return ts.Stats().ActiveConns == n })
}

func waitTemps(t *testing.T, dir string, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d temporary files", n), func() bool { _, temps := listFiles(t, dir); return len(temps) == n })
}

// Between frames a persistent client may think for up to IdleTimeout; the
// shorter HandshakeTimeout only starts with its next request's first byte.
func TestThinkTimeBetweenFrames(t *testing.T) {
	ts := startServer(t, Options{HandshakeTimeout: 100 * time.Millisecond, IdleTimeout: time.Minute})
	c := ts.dial(t)
	ar := wire.NewAnswerReader(c)
	for i := range 2 {
		if i > 0 {
			time.Sleep(300 * time.Millisecond) // three handshake timeouts
		}
		if err := sendFrame(c, ar, []byte("thought"), nil, wire.TermLF); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	if st := ts.Stats(); st.Frames != 2 || len(st.Rejects) != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// Over IPv6 the peer folder is the sanitised address.
func TestIPv6PeerFolder(t *testing.T) {
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	dir := t.TempDir()
	s, err := New(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	defer s.Shutdown(context.Background())
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if err := sendFrame(c, wire.NewAnswerReader(c), []byte("v6"), nil, wire.TermLF); err != nil {
		t.Fatal(err)
	}
	finals, _ := listFiles(t, dir)
	if len(finals) != 1 || !strings.HasPrefix(finals[0], "__1"+string(filepath.Separator)) {
		t.Fatalf("files %v, want one under __1/", finals)
	}
}
