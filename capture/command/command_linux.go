//go:build linux

package command

import (
	"errors"
	"syscall"
)

const supported = true

// procAttr puts the child in a process group of its own, so that stopping
// it reaches everything it started (a shell pipeline, a helper), and asks
// the kernel to send it SIGTERM if the agent dies without cleaning up, so
// an orphaned camera process does not keep the camera busy. (The death
// signal fires when the OS thread that forked exits; Go keeps threads for
// the life of the process unless a goroutine exits while locked to one, and
// a spurious kill would only show up as a child restart.)
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

type sysSignal = syscall.Signal

const (
	sigTerm = syscall.SIGTERM
	sigKill = syscall.SIGKILL
)

// signalGroup signals every process in the group led by pid. A group
// that no longer exists is not an error.
func signalGroup(pid int, sig sysSignal) error {
	err := syscall.Kill(-pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// groupAlive reports whether any process (zombies included) is left in
// the group led by pid.
func groupAlive(pid int) bool {
	err := syscall.Kill(-pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
