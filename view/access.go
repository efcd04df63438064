package view

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// Access guards a handler with HTTP basic auth, a bearer token, or both
// (either one then lets a request in). The zero value lets everyone in.
type Access struct {
	User, Password string // basic auth, when User is set
	Token          string // "Authorization: Bearer <Token>", when set
	// Open paths are served without credentials (e.g. /healthz for a
	// load balancer).
	Open []string
}

// Enabled reports whether any credential is required.
func (a Access) Enabled() bool { return a.User != "" || a.Token != "" }

// equal compares in constant time for equal-length hashes, so neither the
// secret's content nor its length leaks through timing.
func equal(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

func (a Access) allowed(r *http.Request) bool {
	if a.Token != "" {
		if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && equal(strings.TrimSpace(v), a.Token) {
			return true
		}
	}
	if a.User != "" {
		if u, p, ok := r.BasicAuth(); ok && equal(u, a.User) && equal(p, a.Password) {
			return true
		}
	}
	return false
}

// Wrap returns h guarded by a; 401 with a WWW-Authenticate challenge for a
// request without valid credentials.
func (a Access) Wrap(h http.Handler) http.Handler {
	if !a.Enabled() {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, p := range a.Open {
			if r.URL.Path == p {
				h.ServeHTTP(w, r)
				return
			}
		}
		if a.allowed(r) {
			h.ServeHTTP(w, r)
			return
		}
		if a.User != "" {
			w.Header().Add("WWW-Authenticate", `Basic realm="framerecv", charset="UTF-8"`)
		}
		if a.Token != "" {
			w.Header().Add("WWW-Authenticate", `Bearer realm="framerecv"`)
		}
		http.Error(w, "credentials required (HTTP basic auth or a bearer token, as framerecv was started with)", http.StatusUnauthorized)
	})
}
