package receiver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"framepush/wire"
)

// testPKI is a throwaway CA with a server certificate for 127.0.0.1 and a
// client certificate.
type testPKI struct {
	pool   *x509.CertPool
	server tls.Certificate
	client tls.Certificate
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage) tls.Certificate {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &testPKI{
		pool:   pool,
		server: leaf(2, "framerecv", x509.ExtKeyUsageServerAuth),
		client: leaf(3, "porch-cam", x509.ExtKeyUsageClientAuth),
	}
}

func TestMutualTLS(t *testing.T) {
	pki := newTestPKI(t)
	ts := startServer(t, Options{HandshakeTimeout: 2 * time.Second, TLS: &tls.Config{
		Certificates: []tls.Certificate{pki.server},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pki.pool,
		MinVersion:   tls.VersionTLS12,
	}})

	// With a client certificate: frames are stored as usual.
	c, err := tls.Dial("tcp", ts.addr, &tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{pki.client}})
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
	nc := tls.Client(raw, &tls.Config{RootCAs: pki.pool, ServerName: "127.0.0.1"})
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
