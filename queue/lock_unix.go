//go:build unix

package queue

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// lockDir takes an exclusive advisory lock so that two agents never share a
// spool: both would number their files from the same run and delete each
// other's frames. The kernel drops the lock when the process dies, so a
// crash never leaves the spool locked.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("in use by another framepush process (lock %s is held); give each agent its own spool directory", path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// The pid is for the operator wondering who holds the lock.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

func unlockDir(f *os.File) error {
	// Closing the descriptor releases the flock.
	return f.Close()
}
