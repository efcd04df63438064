package receiver

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"framepush/wire"
)

// Store is the seam between the protocol and where frames are kept: the
// local folder (the default, Options.Dir) or an object store (package
// framepush/store/s3, linked only into framerecv). The connection calls
// Begin after the SIZE request and before GOT SIZE, writes the payload into
// the returned Upload, and calls Commit once every byte arrived and passed
// the announced checksum; GOT IMAGE follows only a successful Commit.
type Store interface {
	// Begin reserves what one frame needs (a temporary file, memory). An
	// error refuses the frame before GOT SIZE: a *Refusal is answered with
	// its reason, anything else with "ERR internal".
	Begin(f Frame) (Upload, error)

	// Ready is nil while the store can take frames, else why not. /healthz
	// and /readyz answer 503 with it.
	Ready() error

	// String names the store for logs: "dir ./frames", "s3://bucket/prefix".
	String() string
}

// Frame is what is known of a frame before its payload arrives.
type Frame struct {
	Size   int64
	Peer   string    // remote address, host:port
	Client string    // the extension's name=, else the peer IP as a folder name
	Meta   wire.Meta // extension tokens, if any
	Began  time.Time // when the SIZE request was read
}

// Upload receives one frame's payload, in order, through Write.
type Upload interface {
	io.Writer

	// Commit makes the frame durable. ext (jpg, png, bin) comes from the
	// payload's magic bytes. On success the frame is acknowledged; on
	// error it is not, and a *Refusal gives the answer (default
	// "ERR internal"). The client resends either way.
	Commit(ext string) (Committed, error)

	// Close releases what Begin reserved and discards an uncommitted
	// frame. It is called once, after OnFrame, whatever happened.
	Close()
}

// EagerUpload is an Upload that may want the payload's bytes as they
// arrive, a read at a time, rather than in full copy buffers: the S3 store
// streams a frame into a PUT already under way. Eager is asked once, after
// Begin.
type EagerUpload interface {
	Upload
	Eager() bool
}

// Committed is where a committed frame lives.
type Committed struct {
	Path      string // file path, or s3://bucket/key
	Duplicate bool   // the same frame (name and id) was already stored: nothing new was written
	// Payload is the frame's bytes when the store holds them in memory
	// (the S3 store does), valid until Close; nil for the folder store.
	Payload []byte
}

// Refusal is a store's answer for a frame it cannot take or keep: it is
// sent as "ERR <Reason> <Detail>" and logged with Msg and Err. Stores use
// retryable reasons only (wire.ReasonBusy, wire.ReasonInternal,
// wire.ReasonDiskFull), so the client resends.
type Refusal struct {
	Reason string
	Detail string
	Msg    string
	Err    error
}

func (r *Refusal) Error() string {
	if r.Err != nil {
		return r.Msg + ": " + r.Err.Error()
	}
	return r.Msg
}

func (r *Refusal) Unwrap() error { return r.Err }

// storeError turns a store's error into the connection's failure.
func storeError(what string, err error) *failure {
	var r *Refusal
	if errors.As(err, &r) {
		return &failure{reason: r.Reason, answer: true, detail: r.Detail, msg: r.Msg, err: r.Err}
	}
	return storeFailure(what, err)
}

// dirStore is the local folder: each frame goes to a ".part-*" file in its
// target folder, is fsynced, renamed to its final name and the folder
// fsynced (unless NoFsync). It is the receiver's behaviour from before the
// seam, unchanged.
type dirStore struct {
	dir      string
	fsync    bool
	minFree  int64
	names    namer
	dirs     dirMaker
	reserved atomic.Int64 // announced bytes of frames in flight, for the disk floor
}

func newDirStore(dir string, fsync bool, minFree int64) *dirStore {
	return &dirStore{dir: dir, fsync: fsync, minFree: minFree, dirs: dirMaker{root: dir, fsync: fsync}}
}

func (d *dirStore) String() string { return "dir " + d.dir }

func (d *dirStore) Ready() error {
	if d.minFree > 0 {
		if free, err := freeBytes(d.dir); err == nil && free < d.minFree {
			return fmt.Errorf("disk below floor: %d bytes free in %s, floor %d", free, d.dir, d.minFree)
		}
	}
	return nil
}

func (d *dirStore) Begin(f Frame) (Upload, error) {
	n := f.Size
	reserved := d.reserved.Add(n)
	u := &dirUpload{d: d, n: n, client: f.Client, began: f.Began, captured: f.Meta.Time}
	if d.minFree > 0 {
		if free, err := freeBytes(d.dir); err == nil && free-reserved < d.minFree {
			u.Close()
			return nil, &Refusal{Reason: wire.ReasonDiskFull,
				Detail: fmt.Sprintf("free=%d floor=%d", free, d.minFree),
				Msg:    fmt.Sprintf("refusing a %d-byte frame: %d bytes free in %s with %d bytes in flight, floor is %d", n, free, d.dir, reserved, d.minFree)}
		}
	}
	// A frame that carries its capture time (the extension's ts) is filed
	// under it: date folder, file name and mtime. Others under arrival.
	day := f.Began
	if !u.captured.IsZero() {
		day = u.captured
	}
	dir, file, err := d.createTemp(f.Client, day)
	if err != nil {
		u.Close()
		return nil, &Refusal{Reason: storeFailure("", err).reason, Detail: "cannot create the frame's temporary file",
			Msg: "cannot create the frame's temporary file", Err: err}
	}
	u.dir, u.f = dir, file
	return u, nil
}

// createTemp makes the temporary file in the frame's folder.
func (d *dirStore) createTemp(client string, now time.Time) (string, *os.File, error) {
	rel := client + "/" + dateDir(now)
	for attempt := 0; ; attempt++ {
		dir, err := d.dirs.ensure(rel)
		if err != nil {
			return "", nil, err
		}
		f, err := os.CreateTemp(dir, tempPrefix+"*")
		if errors.Is(err, fs.ErrNotExist) && attempt == 0 {
			d.dirs.forget(dir) // pruned under us: make it again
			continue
		}
		if err != nil {
			return "", nil, err
		}
		if err := f.Chmod(0o644); err != nil {
			f.Close()
			os.Remove(f.Name())
			return "", nil, err
		}
		return dir, f, nil
	}
}

type dirUpload struct {
	d         *dirStore
	n         int64
	client    string
	began     time.Time
	captured  time.Time // the extension's ts, zero without it
	dir       string
	f         *os.File
	committed bool
	released  bool
}

func (u *dirUpload) Write(p []byte) (int, error) {
	n, err := u.f.Write(p)
	if err != nil {
		return n, &Refusal{Reason: storeFailure("", err).reason, Detail: "cannot write the frame", Msg: "cannot write the frame", Err: err}
	}
	return n, nil
}

func (u *dirUpload) Commit(ext string) (Committed, error) {
	d, f := u.d, u.f
	fail := func(what string, err error) (Committed, error) {
		return Committed{}, &Refusal{Reason: storeFailure("", err).reason, Detail: what, Msg: what, Err: err}
	}
	captured := u.captured
	if !captured.IsZero() {
		if err := os.Chtimes(f.Name(), time.Time{}, captured); err != nil {
			return fail("cannot set the frame's capture time", err)
		}
	}
	if d.fsync {
		if err := f.Sync(); err != nil {
			return fail("cannot fsync the frame", err)
		}
	}
	if err := f.Close(); err != nil {
		return fail("cannot close the frame file", err)
	}
	stamp, seq := d.names.next(time.Now())
	finalDir := u.dir
	if !captured.IsZero() {
		stamp = captured.UTC()
	} else if dateDir(stamp) != dateDir(u.began) {
		// Midnight passed while the frame streamed.
		var err error
		if finalDir, err = d.dirs.ensure(u.client + "/" + dateDir(stamp)); err != nil {
			return fail("cannot create the frame's folder", err)
		}
	}
	final := filepath.Join(finalDir, fileName(stamp, seq, ext))
	for !captured.IsZero() {
		// Capture-time names are not ordered by this process's clock: a
		// frame resent after a restart can meet its earlier copy with the
		// same sequence number. Never replace a stored frame; take the
		// next number (sequence numbers are unique within the process).
		if _, err := os.Lstat(final); err != nil {
			break // not there (or unreadable: Rename reports that)
		}
		_, seq = d.names.next(time.Now())
		final = filepath.Join(finalDir, fileName(stamp, seq, ext))
	}
	if err := os.Rename(f.Name(), final); err != nil {
		return fail("cannot rename the frame to its final name", err)
	}
	u.committed = true
	if d.fsync {
		if err := syncDir(finalDir); err != nil {
			// The rename may not survive a crash, so the frame is not
			// durable: take it back and let the client resend it.
			os.Remove(final)
			return fail("cannot fsync the frame's folder", err)
		}
	}
	return Committed{Path: final}, nil
}

func (u *dirUpload) Close() {
	if u.released {
		return
	}
	u.released = true
	u.d.reserved.Add(-u.n)
	if u.f != nil && !u.committed {
		u.f.Close()
		os.Remove(u.f.Name())
	}
}
