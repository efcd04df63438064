package regularfile

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestOpenRegularOnly(t *testing.T) {
	dir := t.TempDir()
	reg := filepath.Join(dir, "a.jpg")
	if err := os.WriteFile(reg, []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.jpg")
	if err := os.Symlink(reg, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{reg, link} {
		f, st, err := Open(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		b, err := io.ReadAll(f)
		f.Close()
		if err != nil || string(b) != "abc" || st.Size() != 3 {
			t.Fatalf("%s: read %q, %v, size %d", p, b, err, st.Size())
		}
	}
	fifo := filepath.Join(dir, "pipe.jpg")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for p, kind := range map[string]string{fifo: "named pipe (FIFO)", "/dev/zero": "character device", dir: "directory", sock: "socket"} {
		_, _, err := Open(p)
		var nr *NotRegularError
		if !errors.As(err, &nr) || Kind(nr.Mode) != kind || err.Error() != p+" is a "+kind+", not a regular file" {
			t.Errorf("Open(%s) = %v, want a %s refused", p, err, kind)
		}
	}
	if _, _, err := Open(filepath.Join(dir, "none")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
