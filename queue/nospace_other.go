//go:build !unix

package queue

import (
	"errors"
	"syscall"
)

// isNoSpace reports a full file system.
func isNoSpace(err error) bool { return errors.Is(err, syscall.ENOSPC) }
