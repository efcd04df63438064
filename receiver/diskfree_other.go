//go:build !(linux || darwin)

package receiver

import "errors"

// freeBytes is not implemented on this system; New logs that the free-disk
// floor is not enforced.
func freeBytes(string) (int64, error) {
	return 0, errors.New("free disk space is not measurable on this system")
}
