package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"framepush/receiver"
)

// A FIFO used to block framepush send forever in open(2), deaf to SIGTERM;
// /dev/zero used to be read until the process ran out of memory. Both are
// refused unread now, naming their kind, and the other files still go.
func TestSendRefusesNonRegularFiles(t *testing.T) {
	r := startSendRecv(t, receiver.Options{})
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pipe.jpg")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	ok, _ := sendFile(t, dir, "ok.jpg", sendJPEG, 1000)
	type result struct {
		code     int
		out, err string
	}
	done := make(chan result, 1)
	go func() {
		code, out, errs := runSendTest(t, "--server", r.Addr, "--retry-for", "0", fifo, "/dev/zero", dir, ok)
		done <- result{code, out, errs}
	}()
	var res result
	select {
	case res = <-done:
	case <-time.After(30 * time.Second): // a hang, not a speed limit
		t.Fatal("framepush send hangs on a FIFO or /dev/zero")
	}
	if res.code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", res.code, res.err)
	}
	for _, want := range []string{
		fifo + ": is a named pipe (FIFO), not a regular file: not sent",
		"/dev/zero: is a character device, not a regular file: not sent",
		dir + ": is a directory, not a regular file: not sent",
		"3 of 4 files not delivered",
	} {
		if !strings.Contains(res.err, want) {
			t.Errorf("stderr lacks %q:\n%s", want, res.err)
		}
	}
	if !strings.Contains(res.out, "sent "+ok+" (1000 bytes)") {
		t.Errorf("the regular file was not sent; stdout:\n%s", res.out)
	}
}

// Files are read up to --max-size (default framerecv's 64 MiB) and no more.
func TestSendMaxSize(t *testing.T) {
	r := startSendRecv(t, receiver.Options{})
	dir := t.TempDir()
	huge := filepath.Join(dir, "huge.bin")
	f, err := os.Create(huge)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(64<<20 + 1); err != nil { // sparse: no disk, no time
		t.Fatal(err)
	}
	f.Close()
	code, _, errs := runSendTest(t, "--server", r.Addr, huge)
	if code != 1 || !strings.Contains(errs, huge+": 67108865 bytes, larger than the --max-size of 67108864 bytes: not sent") {
		t.Fatalf("exit %d, stderr:\n%s", code, errs)
	}
	exact, _ := sendFile(t, dir, "exact.jpg", sendJPEG, 1024)
	over, _ := sendFile(t, dir, "over.jpg", sendJPEG, 1025)
	code, out, errs := runSendTest(t, "--server", r.Addr, "--max-size", "1KiB", exact, over)
	if code != 1 || !strings.Contains(out, "sent "+exact+" (1024 bytes)") ||
		!strings.Contains(errs, over+": 1025 bytes, larger than the --max-size of 1024 bytes") {
		t.Fatalf("exit %d, stdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	if code, _, errs := runSendTest(t, "--max-size", "0", exact); code != 2 || !strings.Contains(errs, "--max-size") {
		t.Fatalf("--max-size 0: exit %d, stderr:\n%s", code, errs)
	}
}

// SIGTERM ends a send that waits on a receiver that never answers, at once
// and with a message, not only SIGKILL.
func TestSendStopsOnSIGTERM(t *testing.T) {
	agentBin, _ := bins(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c // held open, never answered
		}
	}()
	file, _ := sendFile(t, t.TempDir(), "a.jpg", sendJPEG, 1000)
	p := start(t, agentBin, "send", "--server", ln.Addr().String(), "--timeout", "10m", "--retry-for", "10m", file)
	select {
	case c := <-accepted:
		defer c.Close()
	case <-time.After(60 * time.Second):
		t.Fatalf("framepush send did not connect; output:\n%s", p.out.String())
	}
	if code := p.signal(t, syscall.SIGTERM, 30*time.Second); code != 1 {
		t.Fatalf("exit %d after SIGTERM, want 1; output:\n%s", code, p.out.String())
	}
	if out := p.out.String(); !strings.Contains(out, "terminated: stopping") || !strings.Contains(out, "not delivered") {
		t.Errorf("output does not say it stopped:\n%s", out)
	}
}
