//go:build !linux

package capture

import (
	"errors"
	"syscall"
)

// The command source relies on Linux process groups and the parent-death
// signal; elsewhere NewCommandSource refuses to start, but the package
// still builds for developers' machines.
const cmdSupported = false

type cmdSignal int

const (
	cmdTerm cmdSignal = iota + 1
	cmdKill
)

func cmdProcAttr() *syscall.SysProcAttr { return nil }

func cmdSignalGroup(int, cmdSignal) error {
	return errors.New("capture: process groups need Linux")
}

func cmdGroupAlive(int) bool { return false }
