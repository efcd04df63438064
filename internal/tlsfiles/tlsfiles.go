// Package tlsfiles loads the PEM files of a TLS client. Configuration
// validation and the sender share it, so that `framepush config check`
// refuses a CA or key pair the sender could not load, with the same words.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// LoadCA reads a PEM file of CA certificates into a pool.
func LoadCA(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("cannot read TLS CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("TLS CA file %s holds no PEM certificate", file)
	}
	return pool, nil
}

// LoadKeyPair loads a client certificate and its key (PEM files).
func LoadKeyPair(cert, key string) (tls.Certificate, error) {
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("cannot load TLS client certificate %s / key %s: %w", cert, key, err)
	}
	return pair, nil
}
