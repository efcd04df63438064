// Package mjpeg keeps the newest image of a camera and serves it as a still
// and as a multipart/x-mixed-replace MJPEG stream, the format browsers, VLC
// and Home Assistant's MJPEG camera read. It uses only the standard library,
// so the agent (cmd/framepush) can link it without pulling in the receiver's
// page or MQTT code.
//
// The producer side (Latest.Set) is O(1) and never waits for a viewer: a
// viewer that cannot keep up skips to the newest image when it is ready for
// the next one, so there is never a backlog, whatever the number of viewers.
package mjpeg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Image is one immutable frame: nobody modifies Data once it is Set.
type Image struct {
	Data        []byte
	ContentType string    // "image/jpeg", "image/png"
	Seq         uint64    // strictly increasing per Latest, from 1
	Time        time.Time // when it was taken (or stored)
}

// Latest holds the newest image and wakes the viewers waiting for the next.
// The zero value is ready to use.
type Latest struct {
	mu      sync.Mutex
	cur     *Image
	changed chan struct{} // closed and replaced on each Set
	seq     uint64
}

// Set makes img the newest image, numbering it; img must not change
// afterwards. It never blocks on viewers.
func (l *Latest) Set(img *Image) {
	l.mu.Lock()
	l.seq++
	img.Seq = l.seq
	l.cur = img
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
	l.mu.Unlock()
}

// Get returns the newest image (nil before the first Set) and a channel
// closed when a newer one is Set.
func (l *Latest) Get() (*Image, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.changed == nil {
		l.changed = make(chan struct{})
	}
	return l.cur, l.changed
}

// Boundary separates the stream's parts.
const Boundary = "framepushframe"

// ContentType is the stream's Content-Type.
const ContentType = "multipart/x-mixed-replace; boundary=" + Boundary

// Streamer serves streams with a bound on concurrent viewers. The zero
// value has no bound and default timeouts.
type Streamer struct {
	// MaxViewers bounds concurrent streams (0: no bound); one more is
	// answered 503.
	MaxViewers int
	// WriteTimeout bounds writing one image to a viewer (default 30 s): a
	// viewer that stops reading is disconnected rather than holding a
	// goroutine forever.
	WriteTimeout time.Duration
	// Repeat resends the current image after this long without a new one
	// (default 10 s), so that clients with a read timeout keep the stream.
	Repeat time.Duration

	viewers atomic.Int64
	served  atomic.Uint64
}

// Viewers is the number of streams being served now.
func (s *Streamer) Viewers() int64 { return s.viewers.Load() }

// Parts is the number of images written to streams so far.
func (s *Streamer) Parts() uint64 { return s.served.Load() }

// Serve streams l to the client until it goes away or ctx ends.
func (s *Streamer) Serve(ctx context.Context, w http.ResponseWriter, r *http.Request, l *Latest) {
	if n := s.viewers.Add(1); s.MaxViewers > 0 && n > int64(s.MaxViewers) {
		s.viewers.Add(-1)
		http.Error(w, fmt.Sprintf("too many stream viewers (limit %d); try again later", s.MaxViewers), http.StatusServiceUnavailable)
		return
	}
	defer s.viewers.Add(-1)
	writeTimeout, repeat := s.WriteTimeout, s.Repeat
	if writeTimeout <= 0 {
		writeTimeout = 30 * time.Second
	}
	if repeat <= 0 {
		repeat = 10 * time.Second
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	// Each part is followed by the next boundary (as mjpg-streamer does),
	// so a reader knows a part ended without waiting for the next image.
	if _, err := io.WriteString(w, "--"+Boundary+"\r\n"); err != nil {
		return
	}
	if err := rc.Flush(); err != nil {
		return
	}
	// Since Go 1.23 Reset needs no drain: a timer's channel never holds a
	// stale tick.
	timer := time.NewTimer(repeat)
	defer timer.Stop()
	var sent uint64
	var head bytes.Buffer
	repeatDue := false
	for {
		img, changed := l.Get()
		if img != nil && (img.Seq != sent || repeatDue) {
			_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
			if err := writePart(w, &head, img); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
			s.served.Add(1)
			sent = img.Seq
			timer.Reset(repeat)
		}
		repeatDue = false
		select {
		case <-changed:
		case <-timer.C:
			repeatDue = true
			timer.Reset(repeat)
		case <-ctx.Done():
			return
		case <-r.Context().Done():
			return
		}
	}
}

func writePart(w http.ResponseWriter, head *bytes.Buffer, img *Image) error {
	head.Reset()
	head.WriteString("Content-Type: ")
	head.WriteString(img.ContentType)
	head.WriteString("\r\nContent-Length: ")
	head.WriteString(strconv.Itoa(len(img.Data)))
	if !img.Time.IsZero() {
		head.WriteString("\r\nX-Timestamp: ")
		head.WriteString(strconv.FormatFloat(float64(img.Time.UnixNano())/1e9, 'f', 6, 64))
	}
	head.WriteString("\r\n\r\n")
	if _, err := w.Write(head.Bytes()); err != nil {
		return err
	}
	if _, err := w.Write(img.Data); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\r\n--"+Boundary+"\r\n")
	return err
}

// ErrNoImage is what ServeStill reports (as a 404) before the first image.
var ErrNoImage = errors.New("no image yet")

// ServeStill answers with the newest image, with Last-Modified and an ETag
// (conditional and range requests work), or 404 before the first one.
// etagPrefix makes the ETag unique across Latests and process runs.
func ServeStill(w http.ResponseWriter, r *http.Request, l *Latest, etagPrefix string) {
	img, _ := l.Get()
	if img == nil {
		http.Error(w, ErrNoImage.Error(), http.StatusNotFound)
		return
	}
	h := w.Header()
	h.Set("Content-Type", img.ContentType)
	h.Set("ETag", `"`+etagPrefix+strconv.FormatUint(img.Seq, 10)+`"`)
	h.Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "", img.Time, bytes.NewReader(img.Data))
}
