package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The agent binary stays small: the receiver's page, its templates and the
// MQTT client must never be linked into it (the agent's snapshot uses only
// the small view/mjpeg writer).
func TestAgentLinksNoServerSideParts(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "framepush/cmd/framepush").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "framepush/view" || pkg == "html/template" || strings.HasPrefix(pkg, "framepush/notify") ||
			strings.Contains(pkg, "paho") || strings.Contains(pkg, "mqtt") {
			t.Errorf("cmd/framepush links %s", pkg)
		}
	}
}
