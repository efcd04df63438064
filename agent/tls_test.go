package agent

import (
	"strings"
	"testing"
	"time"

	"framepush/internal/testutil"
	"framepush/receiver"
)

// The server.tls section reaches the link: frames arrive over TLS verified
// against the configured CA, and a receiver with a certificate from
// another CA gets none.
func TestTLSFromConfig(t *testing.T) {
	pki := testutil.NewPKI(t, "framepush test CA")
	rv := startRecv(t, "127.0.0.1:0", func(o *receiver.Options) { o.TLS = pki.ServerTLS(false) })
	c := testConfig(rv.Addr)
	c.Server.TLS.Enabled = true
	c.Server.TLS.CA = pki.CA
	r, _ := startAgent(t, c, Options{})
	testutil.WaitFor(t, "frames over TLS", 30*time.Second, func() bool { return len(rv.Frames()) >= 5 })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	checkFrames(t, storedFrames(t, rv.Frames()), 160, 120)

	other := testutil.NewPKI(t, "some other CA") // a CA the agent does not trust
	rv2 := startRecv(t, "127.0.0.1:0", func(o *receiver.Options) { o.TLS = other.ServerTLS(false) })
	c.Server.Addresses = []string{rv2.Addr}
	r2, logs := startAgent(t, c, Options{})
	testutil.WaitFor(t, "the refusal", 30*time.Second, func() bool { return r2.a.metrics.failures.Get() >= 2 })
	r2.stop(t)
	if n := len(rv2.Frames()); n != 0 {
		t.Fatalf("%d frames sent to an untrusted receiver", n)
	}
	if s := logs.String(); !strings.Contains(s, "certificate") {
		t.Fatalf("the log does not say why:\n%s", s)
	}
}
