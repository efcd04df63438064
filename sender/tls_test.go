package sender

import (
	"context"
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

	"framepush/capture"
	"framepush/receiver"
	"framepush/wire"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, written as PEM files.
type testPKI struct {
	dir                                              string
	ca, serverCert, serverKey, clientCert, clientKey string
	caPool                                           *x509.CertPool
}

func newPKI(t *testing.T, caName string) *testPKI {
	t.Helper()
	dir := t.TempDir()
	p := &testPKI{dir: dir}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: caName},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	p.caPool = x509.NewCertPool()
	p.caPool.AddCert(caCert)
	p.ca = writePEM(t, dir, "ca.pem", "CERTIFICATE", caDER)

	leaf := func(name string, serial int64, usage x509.ExtKeyUsage, ips []net.IP) (string, string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: name},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			IPAddresses:  ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return writePEM(t, dir, name+".pem", "CERTIFICATE", der), writePEM(t, dir, name+".key", "EC PRIVATE KEY", keyDER)
	}
	p.serverCert, p.serverKey = leaf("server", 2, x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)})
	p.clientCert, p.clientKey = leaf("client", 3, x509.ExtKeyUsageClientAuth, nil)
	return p
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// serverTLS is the receiver's side: its certificate, and client
// certificates required when mtls.
func (p *testPKI) serverTLS(t *testing.T, mtls bool) *tls.Config {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(p.serverCert, p.serverKey)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if mtls {
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, p.caPool
	}
	return cfg
}

func TestTLSAndMutualTLS(t *testing.T) {
	pki := newPKI(t, "framepush test CA")
	for _, mtls := range []bool{false, true} {
		name := "tls"
		if mtls {
			name = "mtls"
		}
		t.Run(name, func(t *testing.T) {
			r := startReceiver(t, receiver.Options{TLS: pki.serverTLS(t, mtls)})
			cert, key := "", ""
			if mtls {
				cert, key = pki.clientCert, pki.clientKey
			}
			cfg, err := TLSConfig(pki.ca, cert, key, "", false)
			if err != nil {
				t.Fatal(err)
			}
			s := newSender(t, Options{Addresses: []string{r.addr}, TLS: cfg, Extension: true, Checksum: wire.ChecksumSHA256, Name: "tls-cam"})
			var frames []capture.Frame
			for i := range 5 {
				f := testFrame(uint64(i+1), 70000*i+1)
				frames = append(frames, f)
				send(t, s, f)
			}
			if err := s.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			r.checkStored(t, frames)
			if st := s.Stats(); st.Connects != 1 || st.Failures != 0 {
				t.Errorf("Stats = %+v", st)
			}
		})
	}
}

func TestTLSFailures(t *testing.T) {
	pki := newPKI(t, "framepush test CA")
	other := newPKI(t, "some other CA")
	r := startReceiver(t, receiver.Options{TLS: pki.serverTLS(t, true)})
	for _, tc := range []struct {
		name                  string
		ca, cert, key, server string
		want                  string
	}{
		{"unknown CA", other.ca, pki.clientCert, pki.clientKey, "", "certificate signed by unknown authority"},
		{"wrong name", pki.ca, pki.clientCert, pki.clientKey, "camera.example", "camera.example"},
		// TLS 1.3 reports a refused client certificate after the
		// handshake, on the first read: at GOT SIZE.
		{"no client cert", pki.ca, "", "", "", "certificate required"},
		// Go's client offers no certificate the server's CA list does
		// not name, so this too ends as "certificate required".
		{"untrusted client cert", pki.ca, other.clientCert, other.clientKey, "", "remote error: tls:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := TLSConfig(tc.ca, tc.cert, tc.key, tc.server, false)
			if err != nil {
				t.Fatal(err)
			}
			s := newSender(t, Options{Addresses: []string{r.addr}, TLS: cfg, Terminator: wire.TermLF})
			err = sendErr(t, s, testFrame(1, 10))
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
	if len(r.frames()) != 0 {
		t.Errorf("receiver stored %d frames from rejected clients", len(r.frames()))
	}
}

func TestTLSConfigErrors(t *testing.T) {
	pki := newPKI(t, "framepush test CA")
	for _, tc := range []struct {
		name, ca, cert, key, want string
	}{
		{"missing CA", filepath.Join(pki.dir, "nope.pem"), "", "", "cannot read TLS CA"},
		{"CA not PEM", pki.serverKey, "", "", "holds no PEM certificate"},
		{"cert without key", pki.ca, pki.clientCert, "", "go together"},
		{"mismatched pair", pki.ca, pki.clientCert, pki.serverKey, "cannot load"},
	} {
		if _, err := TLSConfig(tc.ca, tc.cert, tc.key, "", false); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	cfg, err := TLSConfig("", "", "", "recv.example", true)
	if err != nil || cfg.RootCAs != nil || cfg.ServerName != "recv.example" || !cfg.InsecureSkipVerify || cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("TLSConfig = %+v, %v", cfg, err)
	}
}
