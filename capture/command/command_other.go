//go:build !linux

package command

import (
	"errors"
	"syscall"
)

// The command source relies on Linux process groups and the parent-death
// signal; elsewhere New refuses to start, but the package
// still builds for developers' machines.
const supported = false

type sysSignal int

const (
	sigTerm sysSignal = iota + 1
	sigKill
)

func procAttr() *syscall.SysProcAttr { return nil }

func signalGroup(int, sysSignal) error {
	return errors.New("capture: process groups need Linux")
}

func groupAlive(int) bool { return false }
