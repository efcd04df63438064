package main

import (
	"bytes"
	"fmt"
	"image/jpeg"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// receiver runs the real framerecv binary on the host.
type receiver struct {
	bin  string
	dir  string // frames land under DIR/<client>/<date>/
	addr string // 127.0.0.1:port
	log  string
	cmd  *exec.Cmd
	done chan error
}

func newReceiver(bin, dir, log string) (*receiver, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	return &receiver{bin: bin, dir: dir, addr: addr, log: log}, nil
}

// start runs framerecv and waits until it accepts connections.
func (r *receiver) start() error {
	logf, err := os.OpenFile(r.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(r.bin, "--listen", r.addr, "--dir", r.dir, "--fsync=false", "--log-format", "json")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", r.bin, err)
	}
	r.cmd = cmd
	r.done = make(chan error, 1)
	go func() {
		r.done <- cmd.Wait()
		logf.Close()
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", r.addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case err := <-r.done:
			r.cmd = nil
			return fmt.Errorf("framerecv exited at start (%v); its log:\n%s", err, tail(r.log, 20))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("framerecv does not accept on %s: %w", r.addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM, as an operator would, and checks the exit status.
func (r *receiver) stop() error {
	if r.cmd == nil {
		return nil
	}
	defer func() { r.cmd = nil }()
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-r.done:
		if err != nil {
			return fmt.Errorf("framerecv exited with %v after SIGTERM; its log:\n%s", err, tail(r.log, 20))
		}
		return nil
	case <-time.After(20 * time.Second):
		r.cmd.Process.Kill()
		<-r.done
		return fmt.Errorf("framerecv did not stop within 20 s of SIGTERM")
	}
}

// files lists the frames stored for client in arrival order: names start
// with a fixed-width UTC stamp, under per-day folders.
func (r *receiver) files(client string) ([]string, error) {
	var out []string
	root := filepath.Join(r.dir, client)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) && p == root {
				return filepath.SkipDir
			}
			return err
		}
		if d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".") {
			out = append(out, p)
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool {
		return filepath.Base(filepath.Dir(out[i]))+filepath.Base(out[i]) < filepath.Base(filepath.Dir(out[j]))+filepath.Base(out[j])
	})
	return out, err
}

// frameSet is a scenario's frames after the host-side checks.
type frameSet struct {
	Recs  []frameRec // acknowledged, in order
	Files []string
}

// verify checks what framerecv stored for client against what the tap saw:
// one file per acknowledged frame, same sizes in the same order, every file
// a JPEG that decodes at w×h, capture times strictly increasing, ids unique
// and consecutive (a gap is a lost frame). Every problem is reported.
func verify(r *receiver, t *tap, client string, w, h int) (frameSet, []string) {
	var probs []string
	var fsOut frameSet
	for _, f := range t.acks(client) {
		if f.Err != "" {
			probs = append(probs, fmt.Sprintf("frame id=%s refused: %s", f.Meta.ID, f.Err))
			continue
		}
		fsOut.Recs = append(fsOut.Recs, f)
	}
	files, err := r.files(client)
	if err != nil {
		probs = append(probs, fmt.Sprintf("listing %s: %v", filepath.Join(r.dir, client), err))
	}
	fsOut.Files = files
	if len(files) != len(fsOut.Recs) {
		probs = append(probs, fmt.Sprintf("framerecv stored %d files for %s but acknowledged %d frames", len(files), client, len(fsOut.Recs)))
	}
	for i, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			probs = append(probs, err.Error())
			continue
		}
		if i < len(fsOut.Recs) && int64(len(b)) != fsOut.Recs[i].Size {
			probs = append(probs, fmt.Sprintf("%s: %d bytes, the SIZE line announced %d", p, len(b), fsOut.Recs[i].Size))
		}
		if filepath.Ext(p) != ".jpg" {
			probs = append(probs, fmt.Sprintf("%s: not stored as a JPEG", p))
		}
		img, err := jpeg.Decode(bytes.NewReader(b))
		if err != nil {
			probs = append(probs, fmt.Sprintf("%s: does not decode: %v", p, err))
			continue
		}
		if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
			probs = append(probs, fmt.Sprintf("%s: %dx%d, want %dx%d", p, b.Dx(), b.Dy(), w, h))
		}
	}
	var prevID int64 = -1
	seen := map[string]bool{}
	for i, f := range fsOut.Recs {
		if f.Meta.Time.IsZero() {
			probs = append(probs, fmt.Sprintf("frame %d (id=%s) carries no capture time", i, f.Meta.ID))
		} else if i > 0 && !f.Meta.Time.After(fsOut.Recs[i-1].Meta.Time) {
			probs = append(probs, fmt.Sprintf("capture time goes back: frame id=%s at %s after id=%s at %s",
				f.Meta.ID, f.Meta.Time.Format("15:04:05.000000"), fsOut.Recs[i-1].Meta.ID, fsOut.Recs[i-1].Meta.Time.Format("15:04:05.000000")))
		}
		if seen[f.Meta.ID] {
			probs = append(probs, fmt.Sprintf("frame id=%s delivered twice", f.Meta.ID))
		}
		seen[f.Meta.ID] = true
		n, ok := seqOf(f.Meta.ID)
		if !ok {
			probs = append(probs, fmt.Sprintf("frame id %q ends in no sequence number", f.Meta.ID))
			continue
		}
		if prevID >= 0 && n != prevID+1 {
			probs = append(probs, fmt.Sprintf("frame ids jump from %d to %d: %d frame(s) lost or reordered", prevID, n, n-prevID-1))
		}
		prevID = n
	}
	return fsOut, probs
}

// seqOf returns the decimal number an id ends in (ids are sequence numbers,
// possibly zero-padded or prefixed).
func seqOf(id string) (int64, bool) {
	i := len(id)
	for i > 0 && id[i-1] >= '0' && id[i-1] <= '9' {
		i--
	}
	if i == len(id) {
		return 0, false
	}
	n, err := strconv.ParseInt(id[i:], 10, 64)
	return n, err == nil
}
