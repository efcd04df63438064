package agent

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"framepush/receiver"
)

// writeCA makes a CA and a server certificate for 127.0.0.1 and
// "localhost", writes the CA as PEM into dir and returns its path and the
// server's tls.Config.
func writeCA(t *testing.T, dir string) (string, *tls.Config) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "framepush test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}}, MinVersion: tls.VersionTLS12}
}

// The server.tls section reaches the link: frames arrive over TLS verified
// against the configured CA, and a receiver with a certificate from
// another CA gets none.
func TestTLSFromConfig(t *testing.T) {
	caPath, srvTLS := writeCA(t, t.TempDir())
	rv := startRecv(t, "127.0.0.1:0", func(o *receiver.Options) { o.TLS = srvTLS })
	c := testConfig(rv.addr)
	c.Server.TLS.Enabled = true
	c.Server.TLS.CA = caPath
	r, _ := startAgent(t, c, Options{})
	waitFor(t, "frames over TLS", 30*time.Second, func() bool { return len(rv.frames()) >= 5 })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	checkFrames(t, rv.frames(), 160, 120)

	_, otherTLS := writeCA(t, t.TempDir()) // signed by a CA the agent does not trust
	rv2 := startRecv(t, "127.0.0.1:0", func(o *receiver.Options) { o.TLS = otherTLS })
	c.Server.Addresses = []string{rv2.addr}
	r2, logs := startAgent(t, c, Options{})
	waitFor(t, "the refusal", 30*time.Second, func() bool { return r2.a.metrics.failures.Get() >= 2 })
	r2.stop(t)
	if n := len(rv2.frames()); n != 0 {
		t.Fatalf("%d frames sent to an untrusted receiver", n)
	}
	if s := logs.String(); !strings.Contains(s, "certificate") {
		t.Fatalf("the log does not say why:\n%s", s)
	}
}
