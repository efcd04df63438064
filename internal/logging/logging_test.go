package logging

import (
	"bytes"
	"strings"
	"testing"
)

func TestFormatsAndLevels(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(&buf, "json", "warn")
	if err != nil {
		t.Fatal(err)
	}
	l.Info("hidden")
	l.Warn("shown", "k", 1)
	if s := buf.String(); strings.Contains(s, "hidden") || !strings.Contains(s, `"msg":"shown"`) {
		t.Fatalf("unexpected log output %q", s)
	}
	if _, err := New(&buf, "xml", "info"); err == nil || !strings.Contains(err.Error(), "text or json") {
		t.Fatalf("bad format accepted or unclear error: %v", err)
	}
	if _, err := New(&buf, "text", "loud"); err == nil || !strings.Contains(err.Error(), "debug, info") {
		t.Fatalf("bad level accepted or unclear error: %v", err)
	}
}
