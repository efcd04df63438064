package sender

import (
	"context"
	"crypto/tls"
	"path/filepath"
	"strings"
	"testing"

	"framepush/frame"
	"framepush/internal/testutil"
	"framepush/receiver"
	"framepush/wire"
)

func TestTLSAndMutualTLS(t *testing.T) {
	pki := testutil.NewPKI(t, "framepush test CA")
	for _, mtls := range []bool{false, true} {
		name := "tls"
		if mtls {
			name = "mtls"
		}
		t.Run(name, func(t *testing.T) {
			r := startReceiver(t, receiver.Options{TLS: pki.ServerTLS(mtls)})
			cert, key := "", ""
			if mtls {
				cert, key = pki.ClientCert, pki.ClientKey
			}
			cfg, err := TLSConfig(pki.CA, cert, key, "", false)
			if err != nil {
				t.Fatal(err)
			}
			s := newSender(t, Options{Addresses: []string{r.Addr}, TLS: cfg, Extension: true, Checksum: wire.ChecksumSHA256, Name: "tls-cam"})
			var frames []frame.Frame
			for i := range 5 {
				f := testFrame(uint64(i+1), 70000*i+1)
				frames = append(frames, f)
				send(t, s, f)
			}
			if err := s.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			checkStored(t, r, frames)
			if st := s.Stats(); st.Connects != 1 || st.Failures != 0 {
				t.Errorf("Stats = %+v", st)
			}
		})
	}
}

func TestTLSFailures(t *testing.T) {
	pki := testutil.NewPKI(t, "framepush test CA")
	other := testutil.NewPKI(t, "some other CA")
	r := startReceiver(t, receiver.Options{TLS: pki.ServerTLS(true)})
	for _, tc := range []struct {
		name                  string
		ca, cert, key, server string
		want                  string
	}{
		{"unknown CA", other.CA, pki.ClientCert, pki.ClientKey, "", "certificate signed by unknown authority"},
		{"wrong name", pki.CA, pki.ClientCert, pki.ClientKey, "camera.example", "camera.example"},
		// TLS 1.3 reports a refused client certificate after the
		// handshake, on the first read: at GOT SIZE.
		{"no client cert", pki.CA, "", "", "", "certificate required"},
		// Go's client offers no certificate the server's CA list does
		// not name, so this too ends as "certificate required".
		{"untrusted client cert", pki.CA, other.ClientCert, other.ClientKey, "", "remote error: tls:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := TLSConfig(tc.ca, tc.cert, tc.key, tc.server, false)
			if err != nil {
				t.Fatal(err)
			}
			s := newSender(t, Options{Addresses: []string{r.Addr}, TLS: cfg, Terminator: wire.TermLF})
			err = sendErr(t, s, testFrame(1, 10))
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
	if len(r.Frames()) != 0 {
		t.Errorf("receiver stored %d frames from rejected clients", len(r.Frames()))
	}
}

func TestTLSConfigErrors(t *testing.T) {
	pki := testutil.NewPKI(t, "framepush test CA")
	for _, tc := range []struct {
		name, ca, cert, key, want string
	}{
		{"missing CA", filepath.Join(pki.Dir, "nope.pem"), "", "", "cannot read TLS CA"},
		{"CA not PEM", pki.ServerKey, "", "", "holds no PEM certificate"},
		{"cert without key", pki.CA, pki.ClientCert, "", "go together"},
		{"mismatched pair", pki.CA, pki.ClientCert, pki.ServerKey, "cannot load"},
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
