//go:build unix

package queue

import (
	"errors"
	"syscall"
)

// isNoSpace reports a full file system or an exhausted quota.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
