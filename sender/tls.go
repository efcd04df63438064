package sender

import (
	"crypto/tls"
	"errors"
	"fmt"

	"framepush/internal/tlsfiles"
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
		pool, err := tlsfiles.LoadCA(ca)
		if err != nil {
			return nil, fmt.Errorf("sender: %w", err)
		}
		cfg.RootCAs = pool
	}
	if (cert == "") != (key == "") {
		return nil, errors.New("sender: TLS client certificate and key go together: give both or neither")
	}
	if cert != "" {
		pair, err := tlsfiles.LoadKeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("sender: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
