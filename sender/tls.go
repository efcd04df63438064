package sender

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TLSConfig builds the client side of a TLS link from PEM files, for
// Options.TLS. ca is the file of CAs that sign the server's certificate
// (empty: the system's roots); cert and key are the client certificate for
// mutual TLS (both or neither); serverName overrides the name checked in
// the server's certificate (empty: the host of each address). insecure
// skips server verification entirely, for tests against self-signed
// servers only: it gives up protection against a man in the middle.
func TLSConfig(ca, cert, key, serverName string, insecure bool) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName, InsecureSkipVerify: insecure}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("sender: cannot read TLS CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("sender: TLS CA file %s holds no PEM certificate", ca)
		}
		cfg.RootCAs = pool
	}
	if (cert == "") != (key == "") {
		return nil, errors.New("sender: TLS client certificate and key go together: give both or neither")
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("sender: cannot load TLS client certificate %s / key %s: %w", cert, key, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
