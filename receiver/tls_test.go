package receiver

import (
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"framepush/internal/testutil"
	"framepush/wire"
)

func TestMutualTLS(t *testing.T) {
	pki := testutil.NewPKI(t, "test CA")
	ts := startServer(t, Options{HandshakeTimeout: 2 * time.Second, TLS: &tls.Config{
		Certificates: []tls.Certificate{pki.Server},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pki.Pool,
		MinVersion:   tls.VersionTLS12,
	}})

	// With a client certificate: frames are stored as usual.
	c, err := tls.Dial("tcp", ts.addr, &tls.Config{RootCAs: pki.Pool, Certificates: []tls.Certificate{pki.Client}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	ar := wire.NewAnswerReader(c)
	for i := range 3 {
		if err := sendFrame(c, ar, payload(100000+i, jpegMagic, byte(i)), nil, wire.TermNone); err != nil {
			t.Fatalf("frame %d over TLS: %v", i, err)
		}
	}
	if _, err := c.Write([]byte(wire.Bye)); err != nil {
		t.Fatal(err)
	}
	if finals, _ := listFiles(t, ts.dir); len(finals) != 3 {
		t.Fatalf("files %v", finals)
	}

	// Without one: the handshake fails, and that is logged and counted.
	raw, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(30 * time.Second))
	nc := tls.Client(raw, &tls.Config{RootCAs: pki.Pool, ServerName: "127.0.0.1"})
	if err := nc.Handshake(); err == nil {
		// TLS 1.3 reports the missing certificate on the first read.
		_, err = nc.Read(make([]byte, 1))
		if err == nil {
			t.Fatal("server accepted a client without a certificate")
		}
	}
	rec := ts.logs.forPeer(t, raw.LocalAddr().String())
	if rec.Attrs["reason"] != ReasonTLS || !strings.Contains(rec.Attrs["error"], "certificate") {
		t.Fatalf("log %q %v", rec.Msg, rec.Attrs)
	}
	waitRejects(t, ts, ReasonTLS, 1)
}
