package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// NeedProgram finds an external program a test needs (chromium,
// mosquitto, ...), also in /usr/sbin and /sbin, which a user's PATH may
// lack. Missing, it fails the test when CI=true (the suite's dependency
// step, scripts/deps.sh, installs Debian's pkg) and skips it otherwise,
// saying what to install.
func NeedProgram(t testing.TB, name, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not found (CI=true): install Debian's %s package (scripts/deps.sh does)", name, pkg)
	}
	t.Skipf("%s not found: install Debian's %s package (scripts/deps.sh does) to run this test", name, pkg)
	return ""
}
