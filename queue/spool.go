package queue

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"framepush/frame"
)

const (
	lockName      = "lock"
	quarantineDir = "corrupt"
	// quarantineKeep bounds the quarantine: enough files to diagnose a
	// failing card, never enough to fill it.
	quarantineKeep = 8
)

// spool is the directory of frame files. It does no bookkeeping of its own;
// Queue decides what to write and delete.
type spool struct {
	dir   string
	dirf  *os.File // kept open to fsync the directory after each rename
	lock  *os.File // holds the advisory lock while the queue is open
	fsync bool
}

// spoolFile is one frame file found when the spool was opened.
type spoolFile struct {
	name   string
	run, n uint64
	h      header
}

// badFile is a file that could not be used, and why.
type badFile struct {
	name   string
	reason string
}

// scan is what openSpool found in the directory.
type scan struct {
	frames  []spoolFile // sorted in capture order
	corrupt []badFile   // already quarantined
	temps   int         // leftover temp files removed
	unknown []string    // files that are none of ours, left alone
}

// openSpool creates and locks dir, removes leftover temp files, quarantines
// files whose header is damaged and returns the rest in capture order.
func openSpool(dir string, fsync bool) (*spool, scan, error) {
	var sc scan
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, sc, fmt.Errorf("queue: create spool directory: %w", err)
	}
	lock, err := lockDir(filepath.Join(dir, lockName))
	if err != nil {
		return nil, sc, fmt.Errorf("queue: spool directory %s: %w", dir, err)
	}
	dirf, err := os.Open(dir)
	if err != nil {
		lock.Close()
		return nil, sc, fmt.Errorf("queue: open spool directory: %w", err)
	}
	s := &spool{dir: dir, dirf: dirf, lock: lock, fsync: fsync}
	ents, err := dirf.ReadDir(-1)
	if err != nil {
		s.close()
		return nil, sc, fmt.Errorf("queue: list spool directory %s: %w", dir, err)
	}
	for _, de := range ents {
		name := de.Name()
		switch {
		case de.IsDir() || name == lockName || name == runStateName:
		case strings.HasSuffix(name, tempSuffix):
			// A write that never reached its rename: the frame was not
			// acknowledged to the producer, so nothing is lost.
			if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				s.close()
				return nil, sc, fmt.Errorf("queue: remove leftover temp file: %w", err)
			}
			sc.temps++
		case strings.HasSuffix(name, frameSuffix):
			run, n, ok := parseName(name)
			if !ok {
				sc.corrupt = append(sc.corrupt, badFile{name, "file name is not <run>-<counter>-<time>.frame"})
				continue
			}
			h, err := s.stat(name)
			if err != nil {
				var ce *corruptError
				if !errors.As(err, &ce) {
					s.close()
					return nil, sc, fmt.Errorf("queue: read spool file: %w", err)
				}
				sc.corrupt = append(sc.corrupt, badFile{name, ce.reason})
				continue
			}
			sc.frames = append(sc.frames, spoolFile{name: name, run: run, n: n, h: h})
		default:
			sc.unknown = append(sc.unknown, name)
		}
	}
	for _, b := range sc.corrupt {
		s.quarantine(b.name)
	}
	if sc.temps > 0 || len(sc.corrupt) > 0 {
		s.syncDir()
	}
	slices.SortFunc(sc.frames, func(a, b spoolFile) int {
		if a.run != b.run {
			return cmpUint(a.run, b.run)
		}
		if a.n != b.n {
			return cmpUint(a.n, b.n)
		}
		return strings.Compare(a.name, b.name)
	})
	return s, sc, nil
}

func cmpUint(a, b uint64) int {
	if a < b {
		return -1
	}
	return 1
}

func (s *spool) path(name string) string { return filepath.Join(s.dir, name) }

// stat reads and checks the header of a frame file and its size.
func (s *spool) stat(name string) (header, error) {
	f, err := os.Open(s.path(name))
	if err != nil {
		return header{}, err
	}
	defer f.Close()
	return checkedHeader(f)
}

func checkedHeader(f *os.File) (header, error) {
	st, err := f.Stat()
	if err != nil {
		return header{}, err
	}
	h, err := readHeader(f)
	if err != nil {
		return h, err
	}
	if want := h.hdrLen + h.dataLen; st.Size() != want {
		return h, corrupt("file is %d bytes, header says %d", st.Size(), want)
	}
	return h, nil
}

// dirSyncError reports a frame file that was written and renamed but whose
// directory entry could not be synced.
type dirSyncError struct{ err error }

func (e *dirSyncError) Error() string { return "sync spool directory: " + e.err.Error() }
func (e *dirSyncError) Unwrap() error { return e.err }

// write stores f as name: temp file, fsync, rename, fsync of the directory.
// After a crash the name either does not exist or holds the whole frame.
func (s *spool) write(name string, f *frame.Frame) (err error) {
	final := s.path(name)
	tmp := final + tempSuffix
	fd, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("queue: write spool file: %w", err)
	}
	defer func() {
		var ds *dirSyncError
		if err != nil && !errors.As(err, &ds) {
			fd.Close()
			os.Remove(tmp)
			err = fmt.Errorf("queue: write spool file %s: %w", final, err)
		}
	}()
	if _, err := fd.Write(encodeHeader(f)); err != nil {
		return err
	}
	if _, err := fd.Write(f.Data); err != nil {
		return err
	}
	if s.fsync {
		if err := fd.Sync(); err != nil {
			return err
		}
	}
	if err := fd.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	if s.fsync {
		if err := s.dirf.Sync(); err != nil {
			// The file is complete under its final name; only the
			// directory entry may not be durable yet. The caller keeps
			// the frame and warns.
			return &dirSyncError{err}
		}
	}
	return nil
}

// read returns the frame stored as name, with its payload checked.
func (s *spool) read(name string) (frame.Frame, error) {
	fd, err := os.Open(s.path(name))
	if err != nil {
		return frame.Frame{}, err
	}
	defer fd.Close()
	h, err := checkedHeader(fd)
	if err != nil {
		return frame.Frame{}, err
	}
	data := make([]byte, h.dataLen)
	if _, err := io.ReadFull(fd, data); err != nil {
		return frame.Frame{}, shortRead(err, "payload")
	}
	if got := crc32.Checksum(data, castagnoli); got != h.dataCRC {
		return frame.Frame{}, corrupt("payload checksum %08x, header says %08x", got, h.dataCRC)
	}
	f := h.meta
	f.Data = data
	return f, nil
}

// remove deletes a delivered or dropped frame's file. The directory is not
// synced: if power fails before the next sync, the frame is sent again,
// which at-least-once delivery allows, and the card is spared a flush.
func (s *spool) remove(name string) error {
	if err := os.Remove(s.path(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("queue: delete spool file: %w", err)
	}
	return nil
}

// quarantine moves a damaged file into corrupt/, keeping only the newest
// few there; if it cannot be moved it is deleted.
func (s *spool) quarantine(name string) error {
	qdir := filepath.Join(s.dir, quarantineDir)
	err := os.MkdirAll(qdir, 0o750)
	if err == nil {
		err = os.Rename(s.path(name), filepath.Join(qdir, name))
	}
	if err != nil {
		return s.remove(name)
	}
	ents, err := os.ReadDir(qdir) // sorted by name, oldest first
	if err != nil {
		return nil
	}
	for len(ents) > quarantineKeep {
		os.Remove(filepath.Join(qdir, ents[0].Name()))
		ents = ents[1:]
	}
	return nil
}

func (s *spool) syncDir() {
	if s.fsync {
		s.dirf.Sync()
	}
}

func (s *spool) close() error {
	err := s.dirf.Close()
	return errors.Join(err, unlockDir(s.lock))
}
