package receiver

import (
	"bytes"
	"errors"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Temporary files are named ".part-*" inside the folder their frame will
// land in, so the final rename never crosses a file system. Nothing else in
// Dir starts with that prefix, so leftovers are recognised safely.
const tempPrefix = ".part-"

// stampLayout is the timestamp at the start of every frame's file name:
// fixed width, UTC, nanoseconds, no ':' (awkward on some file systems), so
// names sort by arrival time.
const stampLayout = "20060102T150405.000000000Z"

// namer hands out arrival stamps and sequence numbers. Stamps strictly
// increase within a process even if the wall clock steps back, so names
// sort in arrival order; across restarts the wall clock orders them.
type namer struct {
	mu   sync.Mutex
	last int64
	seq  uint64
}

func (n *namer) next(now time.Time) (time.Time, uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	ns := now.UnixNano()
	if ns <= n.last {
		ns = n.last + 1
	}
	n.last = ns
	n.seq++
	return time.Unix(0, ns).UTC(), n.seq
}

// fileName is "<stamp>-<seq>.<ext>".
func fileName(stamp time.Time, seq uint64, ext string) string {
	b := make([]byte, 0, len(stampLayout)+1+8+1+len(ext))
	b = stamp.AppendFormat(b, stampLayout)
	b = append(b, '-')
	s := strconv.FormatUint(seq, 10)
	for i := len(s); i < 6; i++ {
		b = append(b, '0')
	}
	b = append(b, s...)
	b = append(b, '.')
	b = append(b, ext...)
	return string(b)
}

// dateDir is the per-day folder name of stamp.
func dateDir(stamp time.Time) string { return stamp.UTC().Format("2006-01-02") }

// ExtFor is the extension (jpg, png, bin) a payload's first 8 bytes (or
// all of a shorter one) call for: what Upload.Commit is given.
func ExtFor(head []byte) string { return extFor(head) }

// extFor guesses the file extension from a payload's first bytes.
func extFor(head []byte) string {
	switch {
	case len(head) >= 3 && head[0] == 0xFF && head[1] == 0xD8 && head[2] == 0xFF:
		return "jpg"
	case len(head) >= 8 && bytes.Equal(head[:8], []byte("\x89PNG\r\n\x1a\n")):
		return "png"
	}
	return "bin"
}

// peerFolder turns a remote address into a folder name: the IP without
// port, IPv4-mapped IPv6 unmapped, ':' and '%' replaced by '_' (IPv6
// "fe80::1%eth0" becomes "fe80__1_eth0"), anything outside
// [A-Za-z0-9._-] replaced by '_'.
func peerFolder(addr net.Addr) string {
	s := ""
	if addr != nil {
		s = addr.String()
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		s = ap.Addr().Unmap().String()
	} else if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			b[i] = '_'
		}
	}
	s = string(b)
	if s == "" || strings.Trim(s, ".") == "" {
		return "unknown"
	}
	return s
}

// dirMaker creates frame folders under root, fsyncing each parent whose
// entries changed so that a durable file is also reachable after a crash.
// Folders it made or saw are cached to keep the per-frame cost to nothing.
type dirMaker struct {
	root  string
	fsync bool
	known sync.Map // path -> struct{}
}

// ensure makes root/rel (rel uses '/' and has no ".." elements).
func (d *dirMaker) ensure(rel string) (string, error) {
	full := filepath.Join(d.root, filepath.FromSlash(rel))
	if _, ok := d.known.Load(full); ok {
		return full, nil
	}
	parent := d.root
	for _, part := range strings.Split(rel, "/") {
		p := filepath.Join(parent, part)
		err := os.Mkdir(p, 0o755)
		switch {
		case err == nil:
			if d.fsync {
				if err := syncDir(parent); err != nil {
					return "", err
				}
			}
		case errors.Is(err, fs.ErrExist):
			st, serr := os.Stat(p)
			if serr != nil {
				return "", serr
			}
			if !st.IsDir() {
				return "", &fs.PathError{Op: "mkdir", Path: p, Err: syscall.ENOTDIR}
			}
		default:
			return "", err
		}
		parent = p
	}
	d.known.Store(full, struct{}{})
	return full, nil
}

// forget drops a cached folder, for when it vanished under us (an operator
// pruning old days).
func (d *dirMaker) forget(full string) { d.known.Delete(full) }

// syncDir fsyncs a folder so that entries created or renamed in it survive
// a crash.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// cleanLeftovers removes temporary files a crashed receiver left under
// root and returns how many it removed. Errors are reported per file
// through onErr and do not stop the walk.
func cleanLeftovers(root string, onRemoved func(path string, size int64), onErr func(path string, err error)) int {
	n := 0
	_ = filepath.WalkDir(root, func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			onErr(path, err)
			if de != nil && de.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if !de.Type().IsRegular() || !strings.HasPrefix(de.Name(), tempPrefix) {
			return nil
		}
		var size int64
		if info, err := de.Info(); err == nil {
			size = info.Size()
		}
		if err := os.Remove(path); err != nil {
			onErr(path, err)
			return nil
		}
		onRemoved(path, size)
		n++
		return nil
	})
	return n
}

// isNoSpace reports whether err means the file system is full.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
