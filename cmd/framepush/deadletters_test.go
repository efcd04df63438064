package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"framepush/agent"
	"framepush/config"
	"framepush/internal/testutil"
	"framepush/internal/testutil/refuser"
	"framepush/queue"
	"framepush/wire"
)

// "framepush send a b c" with a refused after its payload every time used
// to give up on b and c ("giving up: 2 remaining files not sent").
func TestSendGoesOnAfterARefusedFile(t *testing.T) {
	rv := refuser.Start(t, func(_ wire.Meta, p []byte) bool { return bytes.HasPrefix(p, []byte("AAA")) })
	dir := t.TempDir()
	a, _ := sendFile(t, dir, "a.bin", "AAA", 1000)
	b, _ := sendFile(t, dir, "b.bin", "BBB", 1000)
	c, _ := sendFile(t, dir, "c.bin", "CCC", 1000)
	code, out, errs := runSendTest(t, "--server", rv.Addr, "--terminator", "lf", "--retry-for", "30s", a, b, c)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (a not delivered); stdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	for _, f := range []string{b, c} {
		if !strings.Contains(out, "sent "+f+" ") {
			t.Errorf("stdout does not report %s sent:\n%s", f, out)
		}
	}
	if !strings.Contains(errs, a+": refused after its payload 5 times, not delivered") || !strings.Contains(errs, "1 of 3 files not delivered") {
		t.Errorf("stderr does not report a's refusal:\n%s", errs)
	}
	if strings.Contains(errs, "remaining files not sent") {
		t.Errorf("gave up on the files after a:\n%s", errs)
	}
	if got := len(rv.Accepted()); got != 2 || rv.Refused() != 5 {
		t.Errorf("receiver accepted %d and refused %d times; want b and c, 5 refusals of a", got, rv.Refused())
	}
}

// A frame moved to the dead-letter folder is listed by the command and
// delivered by hand once the receiver takes it.
func TestDeadLettersListAndResend(t *testing.T) {
	rv := refuser.Start(t, func(m wire.Meta, _ []byte) bool { return strings.HasSuffix(m.ID, "-1") })
	spool := t.TempDir()
	c := config.Default()
	c.Name = "dl-test"
	c.Source.Width, c.Source.Height = 64, 48
	c.Trigger.FPS = 5
	c.Server.Addresses = []string{rv.Addr}
	c.Server.Terminator = "lf"
	c.Server.Extension = true
	c.Server.Backoff = config.Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond, Multiplier: 2}
	c.HTTP.Listen = ""
	c.Queue.SpoolDir = spool
	c.Queue.Fsync = false
	c.Queue.MaxAttempts = 2
	a, err := agent.New(c, agent.Options{Notify: func(string) {}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, nil) }()
	testutil.WaitFor(t, "frames behind the refused one", 30*time.Second, func() bool { return len(rv.Accepted()) >= 3 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	dls, err := queue.ListDeadLetters(spool)
	if err != nil || len(dls) != 1 {
		t.Fatalf("dead letters %v (%v)", dls, err)
	}
	id := dls[0].ID

	set := []string{"--set", "queue.spool_dir=" + spool, "--set", "server.addresses=" + rv.Addr,
		"--set", "server.extension=true", "--set", "server.terminator=lf", "--set", "name=dl-test"}
	run := func(sub string, args ...string) (int, string, string) {
		var o, e bytes.Buffer
		code := run(append(append([]string{"deadletters", sub}, set...), args...), &o, &e)
		return code, o.String(), e.String()
	}
	code, out, errs := run("list")
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "internal: test") || !strings.Contains(out, "ATTEMPTS") {
		t.Fatalf("list: exit %d\n%s\n%s", code, out, errs)
	}
	// Still refused: kept, reported, exit 1.
	code, out, errs = run("resend", "--retry-for", "5s", id)
	if code != 1 || !strings.Contains(errs, "not delivered, kept") {
		t.Fatalf("resend while refused: exit %d\n%s\n%s", code, out, errs)
	}
	if dls, _ := queue.ListDeadLetters(spool); len(dls) != 1 {
		t.Fatalf("a refused resend removed the dead letter")
	}
	rv.SetRefuse(nil)
	code, out, errs = run("resend")
	if code != 0 || !strings.Contains(out, "resent "+id) {
		t.Fatalf("resend: exit %d\n%s\n%s", code, out, errs)
	}
	got := rv.Accepted()
	if last := got[len(got)-1]; last.Meta.ID != id || last.Meta.Name != "dl-test" {
		t.Fatalf("the receiver got %q from %q, want the dead letter's own id %q", last.Meta.ID, last.Meta.Name, id)
	}
	if dls, _ := queue.ListDeadLetters(spool); len(dls) != 0 {
		t.Fatalf("delivered dead letter still listed: %v", dls)
	}
	if ents, _ := os.ReadDir(filepath.Join(spool, queue.DeadDir)); len(ents) != 0 {
		t.Fatalf("dead-letter folder not empty: %v", ents)
	}
	code, out, _ = run("list")
	if code != 0 || !strings.Contains(out, "no dead letters") {
		t.Fatalf("list after resend: %d %s", code, out)
	}
	code, out, _ = run("--help")
	if code != 0 || !strings.Contains(out, "max_attempts") || !strings.Contains(out, "Examples:") {
		t.Fatalf("--help: %d %s", code, out)
	}
}
