//go:build !unix

package queue

import "os"

// lockDir only opens the lock file where flock(2) does not exist; the agent
// runs on Linux, this keeps the package building elsewhere.
func lockDir(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
}

func unlockDir(f *os.File) error { return f.Close() }
