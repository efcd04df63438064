package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"framepush/internal/testutil/recvtest"
	"framepush/receiver"
)

// startSendRecv runs a reference receiver on a loopback port for runSend
// tests.
func startSendRecv(t *testing.T, opt receiver.Options) *recvtest.Receiver {
	t.Helper()
	return recvtest.Start(t, "127.0.0.1:0", opt)
}

// sendFile writes a file of n bytes starting with magic and returns its
// path and content.
func sendFile(t *testing.T, dir, name, magic string, n int) (string, []byte) {
	t.Helper()
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*13 + len(name))
	}
	copy(b, magic)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, b
}

func runSendTest(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code = runSend(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

const (
	sendJPEG = "\xFF\xD8\xFF\xE0"
	sendPNG  = "\x89PNG\r\n\x1a\n"
)

func TestSendFilesToReceiver(t *testing.T) {
	r := startSendRecv(t, receiver.Options{})
	dir := t.TempDir()
	a, ab := sendFile(t, dir, "a.jpg", sendJPEG, 70000)
	b, bb := sendFile(t, dir, "b.png", sendPNG, 300)
	c, cb := sendFile(t, dir, "c.dat", "raw", 2<<20)
	mtime := time.Date(2024, 11, 24, 5, 20, 0, 123456789, time.UTC)
	if err := os.Chtimes(b, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runSendTest(t, "--server", r.Addr, "--extension", "--name", "cam7", "--terminator", "lf", a, b, c)
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("stdout:\n%s\nwant one line per file", out)
	}
	for i, want := range []struct {
		file string
		n    int
	}{{a, 70000}, {b, 300}, {c, 2 << 20}} {
		re := regexp.MustCompile(`^sent ` + regexp.QuoteMeta(want.file) + ` \(` + strconv.Itoa(want.n) + ` bytes\) to ` + regexp.QuoteMeta(r.Addr) + ` in [0-9.]+(µs|ms|s)$`)
		if !re.MatchString(lines[i]) {
			t.Errorf("line %d = %q, want %s", i, lines[i], re)
		}
	}
	st := r.Frames()
	if len(st) != 3 {
		t.Fatalf("receiver stored %d frames", len(st))
	}
	for i, want := range [][]byte{ab, bb, cb} {
		got, err := os.ReadFile(st[i].Path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("frame %d differs from its file", i)
		}
		if st[i].Client != "cam7" || st[i].Meta.ID != strconv.Itoa(i+1) || !st[i].Meta.HasSHA256 {
			t.Errorf("frame %d: client %q meta %+v, want cam7, id %d, sha256", i, st[i].Client, st[i].Meta, i+1)
		}
	}
	if ext := []string{".jpg", ".png", ".bin"}; filepath.Ext(st[0].Path) != ext[0] || filepath.Ext(st[1].Path) != ext[1] || filepath.Ext(st[2].Path) != ext[2] {
		t.Errorf("stored as %s, %s, %s", st[0].Path, st[1].Path, st[2].Path)
	}
	if !st[1].Meta.Time.Equal(mtime) {
		t.Errorf("ts = %v, want the file's mtime %v", st[1].Meta.Time, mtime)
	}
}

// The defaults are the seed client's: no extension, unterminated SIZE.
func TestSendSeedDefaults(t *testing.T) {
	r := startSendRecv(t, receiver.Options{})
	p, b := sendFile(t, t.TempDir(), "x.jpg", sendJPEG, 5000)
	code, _, errs := runSendTest(t, "--server", r.Addr, "--mode", "seed", p)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	st := r.Frames()
	if len(st) != 1 || !st[0].Meta.IsZero() {
		t.Fatalf("stored %+v, want one frame without extension tokens", st)
	}
	if got, _ := os.ReadFile(st[0].Path); !bytes.Equal(got, b) {
		t.Error("stored frame differs")
	}
}

func TestSendFailures(t *testing.T) {
	r := startSendRecv(t, receiver.Options{MaxFrameSize: 1000})
	dir := t.TempDir()
	big, _ := sendFile(t, dir, "big.jpg", sendJPEG, 2000)
	small, _ := sendFile(t, dir, "small.jpg", sendJPEG, 500)
	empty, _ := sendFile(t, dir, "empty.jpg", "", 0)
	missing := filepath.Join(dir, "missing.jpg")
	code, out, errs := runSendTest(t, "--server", r.Addr, "--terminator", "lf", big, missing, empty, small)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, errs)
	}
	for _, want := range []string{
		big + ": refused, not retried: ", "too-large: max=1000",
		missing + ": cannot read: no such file or directory",
		empty + ": empty file",
		"3 of 4 files not delivered",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	if !strings.Contains(out, "sent "+small+" (500 bytes)") || len(r.Frames()) != 1 {
		t.Errorf("the good file was not sent after the bad ones; stdout:\n%s", out)
	}
}

func TestSendServerDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	a, _ := sendFile(t, dir, "a.jpg", sendJPEG, 100)
	b, _ := sendFile(t, dir, "b.jpg", sendJPEG, 100)
	start := time.Now()
	code, out, errs := runSendTest(t, "--server", down, "--retry-for", "300ms", a, b)
	if code != 1 || out != "" {
		t.Fatalf("exit %d, stdout %q; want 1 and nothing sent", code, out)
	}
	for _, want := range []string{a + ": not delivered: ", "connection refused", "retrying for up to 300ms", "giving up: 1 remaining files not sent", "2 of 2 files not delivered"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("giving up took %v", took)
	}
}

func TestSendFailover(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := l.Addr().String()
	l.Close()
	r := startSendRecv(t, receiver.Options{})
	p, _ := sendFile(t, t.TempDir(), "a.jpg", sendJPEG, 100)
	code, out, errs := runSendTest(t, "--server", down, "--server", r.Addr, p)
	if code != 0 || !strings.Contains(out, "to "+r.Addr) {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

func TestSendUsage(t *testing.T) {
	code, out, _ := runSendTest(t, "--help")
	if code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	for _, want := range []string{"Examples:", "framepush send photo.jpg", "Python server", "--mode seed", "-retry-for"} {
		if !strings.Contains(out, want) {
			t.Errorf("--help lacks %q", want)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "no FILE to send"},
		{[]string{"--mode", "fast", "x"}, "unknown mode"},
		{[]string{"--terminator", "cr", "x"}, "unknown SIZE terminator"},
		{[]string{"--name", "cam", "x"}, "add --extension"},
		{[]string{"--extension", "--name", "a b", "x"}, "--name"},
		{[]string{"--server", "nohost", "x"}, "want HOST:PORT"},
		{[]string{"--min-throughput", "fast", "x"}, "--min-throughput"},
		{[]string{"--timeout", "0s", "x"}, "--timeout"},
		{[]string{"--bogus"}, "not defined"},
	} {
		code, _, errs := runSendTest(t, tc.args...)
		if code != 2 || !strings.Contains(errs, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 mentioning %q", tc.args, code, errs, tc.want)
		}
	}
}
