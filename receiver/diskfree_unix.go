//go:build linux || darwin

package receiver

import "golang.org/x/sys/unix"

// freeBytes reports the bytes available to an unprivileged user on the
// file system holding dir.
func freeBytes(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
