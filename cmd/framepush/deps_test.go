package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The agent binary must not link server-side clients: the S3 store
// (framepush/store/s3, minio-go) belongs to framerecv only.
func TestAgentLinksNoServerSideClients(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "framepush/cmd/framepush").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.Contains(pkg, "minio") || strings.HasPrefix(pkg, "framepush/store") {
			t.Errorf("framepush links %s", pkg)
		}
	}
}
