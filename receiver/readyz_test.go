package receiver

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// /readyz, the load balancer's check, answers like /healthz: 200 while the
// store can take frames, 503 with the reason when it cannot (here: the
// folder store below its free-disk floor).
func TestReadyzFollowsTheStore(t *testing.T) {
	for _, tc := range []struct {
		minFree int64
		code    int
		body    string
	}{
		{-1, http.StatusOK, "ok"},
		{1 << 62, http.StatusServiceUnavailable, "disk below floor"},
	} {
		ts := startServer(t, Options{MinFreeBytes: tc.minFree})
		rr := httptest.NewRecorder()
		ts.Handler().ServeHTTP(rr, httptest.NewRequest("GET", "/readyz", nil))
		if rr.Code != tc.code || !strings.Contains(rr.Body.String(), tc.body) {
			t.Errorf("min free %d: /readyz %d %q, want %d %q", tc.minFree, rr.Code, rr.Body.String(), tc.code, tc.body)
		}
	}
}
