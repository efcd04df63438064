// Package regularfile opens files that must be regular files (images to
// send or replay) without the traps of the other kinds: opening a FIFO
// blocks until a writer comes (forever, and deaf to signals while in
// open(2)), and a device such as /dev/zero never ends.
package regularfile

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// NotRegularError says that a path is not a regular file, and what it is.
type NotRegularError struct {
	Path string
	Mode fs.FileMode
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("%s is a %s, not a regular file", e.Path, Kind(e.Mode))
}

// Open opens path for reading if it is a regular file (a symbolic link to
// one is fine) and returns it with its FileInfo. The kind is checked before
// the open, and again on the open file: the open is non-blocking, so a FIFO
// swapped in between the two cannot hang it. Errors are *NotRegularError or
// those of os.Stat and os.OpenFile.
func Open(path string) (*os.File, fs.FileInfo, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, nil, &NotRegularError{Path: path, Mode: st.Mode()}
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0) // no effect on regular files' reads
	if err != nil {
		return nil, nil, err
	}
	if st, err = f.Stat(); err != nil {
		f.Close()
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, &NotRegularError{Path: path, Mode: st.Mode()}
	}
	return f, st, nil
}

// Kind names a file type for messages: "directory", "named pipe (FIFO)" ...
func Kind(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "regular file"
	case m.IsDir():
		return "directory"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe (FIFO)"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m&fs.ModeSocket != 0:
		return "socket"
	}
	return "special file (" + m.Type().String() + ")"
}
