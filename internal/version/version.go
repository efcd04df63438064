// Package version holds the build's version, stamped by the Makefile with
// -ldflags "-X framepush/internal/version.Version=...".
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is the release or git description of this build.
var Version = "dev"

// String describes the build for `version` output and startup logs.
func String(program string) string {
	v := Version
	if v == "dev" {
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	return fmt.Sprintf("%s %s (%s, %s/%s)", program, v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
