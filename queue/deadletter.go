package queue

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"framepush/frame"
)

// Dead letters. A frame the receiver refuses after its payload (ERR
// checksum, ERR internal, ...: see sender.CountsAsRefusal) is retried, but
// not forever: after MaxAttempts such refusals it leaves the queue, so the
// frames behind it flow. With a spool it is moved to the dead-letter folder
// DeadDir inside it: the same file format as the spool (the frame file,
// renamed or written as temp file + fsync + rename), plus a small JSON
// file "<frame file>.json" saying why (DeadLetter). Nothing there is sent
// again on its own; "framepush deadletters list" shows the frames and
// "framepush deadletters resend" delivers them by hand. Without a spool
// there is nowhere to keep it: it is dropped, counted under the reason
// "dead-letter" and logged. Refusals are counted in memory, so a restart
// gives a frame MaxAttempts more tries.

// DeadDir is the dead-letter folder's name inside the spool folder.
const DeadDir = "dead"

// DefaultMaxAttempts is how many refusals after the payload a frame gets
// before it is moved aside: enough to ride out a receiver's transient
// storage error, few enough that a poison frame costs seconds.
const DefaultMaxAttempts = 5

const deadInfoSuffix = ".json"

// DeadLetter describes a frame in the dead-letter folder.
type DeadLetter struct {
	File        string    `json:"-"`            // frame file name inside DeadDir
	ID          string    `json:"id"`           // the frame's id, "<run>-<seq>"
	Captured    time.Time `json:"-"`            // capture time
	Bytes       int64     `json:"-"`            // payload size
	Attempts    int       `json:"attempts"`     // refusals counted before it was moved
	LastRefusal string    `json:"last_refusal"` // the receiver's last answer
	Moved       time.Time `json:"moved"`        // when it was moved aside
	Source      string    `json:"-"`
	Format      string    `json:"-"`
}

// deadState is the queue's view of its dead-letter folder.
type deadState struct {
	dir       string // "" without a spool
	moved     uint64
	count     int
	countedAt time.Time
}

// deadRecount bounds how often Stats lists the folder: "framepush
// deadletters resend", another process, removes files from it.
const deadRecount = 5 * time.Second

func (q *Queue) openDead() error {
	dir := filepath.Join(q.opt.SpoolDir, DeadDir)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("queue: create the dead-letter folder: %w", err)
	}
	q.dead.dir = dir
	q.dead.count, _ = countDead(dir)
	q.dead.countedAt = time.Now()
	if q.dead.count > 0 {
		q.log.Warn("queue: the dead-letter folder holds frames the receiver refused; list them with \"framepush deadletters list\"",
			"dir", dir, "frames", q.dead.count)
	}
	return nil
}

func countDead(dir string) (int, error) {
	ents, err := os.ReadDir(dir)
	n := 0
	for _, de := range ents {
		if !de.IsDir() && strings.HasSuffix(de.Name(), frameSuffix) {
			n++
		}
	}
	return n, err
}

func (q *Queue) deadCountLocked(time.Time) int {
	if q.dead.dir == "" {
		return 0
	}
	if time.Since(q.dead.countedAt) >= deadRecount {
		if n, err := countDead(q.dead.dir); err == nil {
			q.dead.count = n
		}
		q.dead.countedAt = time.Now()
	}
	return q.dead.count
}

// Refused settles a frame handed out by Next that the receiver refused
// after its payload, with answer its words. Below MaxAttempts counted
// refusals it is a Nack. At the limit the frame leaves the queue: moved to
// the dead-letter folder (dead true), or without a spool dropped as
// "dead-letter"; either way it is logged once as a warning with its id and
// the last answer.
func (q *Queue) Refused(it Item, answer string) (dead bool, err error) {
	e := it.e
	if e == nil {
		return false, errors.New("queue: Refused of an Item that did not come from Next")
	}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false, fmt.Errorf("queue: refused frame seq %d: %w", e.frame.Seq, ErrClosed)
	}
	if !e.out || e.gone {
		q.mu.Unlock()
		return false, fmt.Errorf("queue: Refused of frame seq %d that is not handed out (acked or nacked already?)", e.frame.Seq)
	}
	e.refusals++
	e.lastRefusal = answer
	if q.opt.MaxAttempts < 0 || e.refusals < q.opt.MaxAttempts {
		q.mu.Unlock()
		return false, q.Nack(it)
	}
	e.out = false
	attrs := []any{"id", it.ID, "seq", e.frame.Seq, "captured", e.frame.Time, "bytes", e.size,
		"attempts", e.refusals, "last_answer", answer}
	if q.sp == nil {
		q.removeLocked(e)
		q.dropped[ReasonDeadLetter]++
		q.expireLocked(q.now(), nil) // memory only: no files
		q.mu.Unlock()
		q.log.Warn("queue: frame refused by the receiver too often; dropped (no spool to keep it in)",
			append(attrs, "reason", ReasonDeadLetter)...)
		return false, nil
	}
	name := e.file
	if name == "" {
		name = fileName(e.run, e.n, e.frame.Time)
	}
	haveFile := e.spooled && !e.writing // a file being written is deleted by its writer
	q.removeLocked(e)
	q.dead.moved++
	q.dead.count++
	q.io.Add(1)
	del := q.expireLocked(q.now(), nil)
	q.startIOLocked(del)
	q.mu.Unlock()
	defer q.io.Done()
	q.removeFiles(del)

	info := DeadLetter{ID: it.ID, Attempts: e.refusals, LastRefusal: answer, Moved: time.Now()}
	if err := q.sp.moveDead(name, haveFile, &it.Frame, &info); err != nil {
		q.mu.Lock()
		q.spoolErrors++
		q.dead.moved--
		q.dead.count--
		q.dropped[ReasonDeadLetter]++
		q.mu.Unlock()
		q.log.Error("queue: frame refused by the receiver too often, and it could not be moved to the dead-letter folder; dropped",
			append(attrs, "reason", ReasonDeadLetter, "err", err)...)
		return false, nil
	}
	q.log.Warn("queue: frame refused by the receiver too often; moved to the dead-letter folder, the frames behind it go on "+
		"(see \"framepush deadletters list\")", append(attrs, "file", filepath.Join(q.dead.dir, name))...)
	return true, nil
}

// moveDead puts frame file name into DeadDir with its description: the
// description first, then the frame (renamed from the spool when haveFile,
// else written from f), so a frame file in DeadDir is always complete.
func (s *spool) moveDead(name string, haveFile bool, f *frame.Frame, info *DeadLetter) error {
	dir := filepath.Join(s.dir, DeadDir)
	b, err := json.Marshal(info)
	if err != nil {
		return err
	}
	if err := writeAtomic(dir, name+deadInfoSuffix, b, s.fsync); err != nil {
		return err
	}
	if haveFile {
		if err := os.Rename(s.path(name), filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("queue: move to the dead-letter folder: %w", err)
		}
	} else {
		if f.Data == nil {
			return errors.New("queue: frame data not in memory")
		}
		if err := writeFrameFile(dir, name, f, s.fsync); err != nil {
			return err
		}
	}
	if s.fsync {
		syncPath(dir)
		s.syncDir()
	}
	return nil
}

// writeAtomic writes b as dir/name: temp file, fsync, rename.
func writeAtomic(dir, name string, b []byte, fsync bool) error {
	final := filepath.Join(dir, name)
	tmp := final + tempSuffix
	err := func() error {
		fd, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		if _, err := fd.Write(b); err != nil {
			fd.Close()
			return err
		}
		if fsync {
			if err := fd.Sync(); err != nil {
				fd.Close()
				return err
			}
		}
		if err := fd.Close(); err != nil {
			return err
		}
		return os.Rename(tmp, final)
	}()
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("queue: write %s: %w", final, err)
	}
	return nil
}

// writeFrameFile writes f in the spool format as dir/name atomically.
func writeFrameFile(dir, name string, f *frame.Frame, fsync bool) error {
	hdr := encodeHeader(f)
	b := make([]byte, 0, len(hdr)+len(f.Data))
	b = append(append(b, hdr...), f.Data...)
	return writeAtomic(dir, name, b, fsync)
}

// ListDeadLetters returns the frames in spoolDir's dead-letter folder,
// oldest capture first. It does not need the spool's lock: a running agent
// only adds files there. A frame file whose header is damaged is listed
// with LastRefusal saying so.
func ListDeadLetters(spoolDir string) ([]DeadLetter, error) {
	dir := filepath.Join(spoolDir, DeadDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list the dead-letter folder: %w", err)
	}
	tag, _, _, _ := readRunState(spoolDir)
	var out []DeadLetter
	for _, de := range ents {
		name := de.Name()
		if de.IsDir() || !strings.HasSuffix(name, frameSuffix) {
			continue
		}
		dl := DeadLetter{File: name}
		if b, err := os.ReadFile(filepath.Join(dir, name+deadInfoSuffix)); err == nil {
			_ = json.Unmarshal(b, &dl)
			dl.File = name
		}
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			continue // resent meanwhile
		}
		h, herr := checkedHeader(f)
		f.Close()
		if herr != nil {
			dl.LastRefusal = "unreadable: " + herr.Error()
		} else {
			dl.Captured, dl.Bytes, dl.Source, dl.Format = h.meta.Time, h.dataLen, h.meta.Source, string(h.meta.Format)
			if run, _, ok := parseName(name); ok && dl.ID == "" && tag != "" {
				dl.ID = FrameID(tag, run, h.meta.Seq)
			}
		}
		out = append(out, dl)
	}
	slices.SortFunc(out, func(a, b DeadLetter) int { return strings.Compare(a.File, b.File) })
	return out, nil
}

// ReadDeadLetter returns the frame stored in the dead-letter folder as
// file, its payload checked.
func ReadDeadLetter(spoolDir, file string) (frame.Frame, error) {
	if file != filepath.Base(file) || !strings.HasSuffix(file, frameSuffix) {
		return frame.Frame{}, fmt.Errorf("%q is not a dead-letter frame file name", file)
	}
	s := &spool{dir: filepath.Join(spoolDir, DeadDir)}
	return s.read(file)
}

// RemoveDeadLetter deletes a frame (and its description) from the
// dead-letter folder, once it was delivered.
func RemoveDeadLetter(spoolDir, file string) error {
	dir := filepath.Join(spoolDir, DeadDir)
	if err := os.Remove(filepath.Join(dir, file)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.Remove(filepath.Join(dir, file+deadInfoSuffix)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return syncPath(dir)
}
