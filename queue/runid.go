package queue

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Frame ids. Every frame handed out carries an id "<run>-<seq>" (Item.ID)
// that is unique for the device for good:
//
//   - <run> is "<tag>.<n>": n counts the starts of the agent and is kept in
//     the spool folder's state file (runStateName), written with fsync
//     before the first frame is queued; tag is random, created with that
//     file, so that a spool folder that was wiped (or a new SD card) never
//     reuses a run of the old one. A memory-only queue has nowhere to keep
//     n: its tag is fresh randomness on every start and n is 1. Neither
//     part depends on the clock, which a Pi without RTC has wrong at boot.
//   - <seq> is Frame.Seq, which the agent numbers 1, 2, 3, ... as frames
//     enter the queue in this run, so a gap a receiver sees is a lost frame.
//
// A frame recovered from the spool keeps the run it was captured in (the
// file name carries it), hence its id.
const (
	runStateName = "run"
	runTagLen    = 10
	// runTagAlphabet has no '-' (the run/seq separator) and no '.', and is
	// a subset of wire.ValidToken's.
	runTagAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
)

// newRunTag returns runTagLen random characters (about 52 bits).
func newRunTag() string {
	b := make([]byte, runTagLen)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	for i := range b {
		b[i] = runTagAlphabet[int(b[i])%len(runTagAlphabet)]
	}
	return string(b)
}

// RunToken formats the <run> part of a frame id.
func RunToken(tag string, run uint64) string { return tag + "." + strconv.FormatUint(run, 10) }

// FrameID formats a frame id "<run>-<seq>".
func FrameID(tag string, run, seq uint64) string {
	return RunToken(tag, run) + "-" + strconv.FormatUint(seq, 10)
}

// readRunState reads the state file: "<tag> <last run>\n". ok is false
// when there is none; a damaged file is an error.
func readRunState(dir string) (tag string, last uint64, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, runStateName))
	if errors.Is(err, fs.ErrNotExist) {
		return "", 0, false, nil
	}
	if err != nil {
		return "", 0, false, err
	}
	f := strings.Fields(string(b))
	if len(f) == 2 && validTag(f[0]) {
		if n, perr := strconv.ParseUint(f[1], 10, 64); perr == nil {
			return f[0], n, true, nil
		}
	}
	return "", 0, false, fmt.Errorf("run state file %s holds %q, want \"<tag> <number>\"", filepath.Join(dir, runStateName), b)
}

func validTag(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !strings.ContainsRune(runTagAlphabet, rune(s[i])) {
			return false
		}
	}
	return true
}

// writeRunState stores the state file atomically and durably (temp file,
// fsync, rename, directory fsync), whatever NoFsync says: it is written
// once per start, and a run number lost to a power cut would be reused.
func writeRunState(dir, tag string, run uint64) error {
	final := filepath.Join(dir, runStateName)
	tmp := final + tempSuffix
	err := func() error {
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(f, "%s %d\n", tag, run); err != nil {
			f.Close()
			return err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		if err := os.Rename(tmp, final); err != nil {
			return err
		}
		return syncPath(dir)
	}()
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("queue: save the run number in %s: %w", final, err)
	}
	return nil
}

func syncPath(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
