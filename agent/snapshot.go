package agent

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"framepush/frame"
	"framepush/view/mjpeg"
)

// snapshot keeps the newest captured frame for GET /snapshot.jpg and
// GET /stream.mjpg, for aiming the camera during installation. It holds a
// shared reference to the frame's data (frames are immutable once
// captured), so it takes nothing from the delivery path: the frame still
// goes to the queue, and keeping it costs one pointer swap. Viewers are
// served from the HTTP goroutines; a slow one skips to the newest frame.
type snapshot struct {
	latest  mjpeg.Latest
	streams mjpeg.Streamer

	once    sync.Once
	ctx     context.Context
	cancel  context.CancelFunc
	started time.Time
}

// maxSnapshotViewers bounds the agent's concurrent streams: a board has
// little CPU and upload to spare.
const maxSnapshotViewers = 4

func (s *snapshot) init() {
	s.once.Do(func() {
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.streams.MaxViewers = maxSnapshotViewers
		s.started = time.Now()
	})
}

// put makes f the newest frame. It never blocks.
func (s *snapshot) put(f frame.Frame) {
	var ct string
	switch f.Format {
	case frame.JPEG:
		ct = "image/jpeg"
	case frame.PNG:
		ct = "image/png"
	default:
		return
	}
	s.latest.Set(&mjpeg.Image{Data: f.Data, ContentType: ct, Time: f.Time})
}

// closeStreams ends the streams, for the HTTP server's Shutdown.
func (s *snapshot) closeStreams() {
	s.init()
	s.cancel()
}

// register adds /snapshot.jpg and /stream.mjpg to mux.
func (s *snapshot) register(mux *http.ServeMux) {
	s.init()
	etag := strconv.FormatInt(s.started.UnixNano(), 36) + "-"
	mux.HandleFunc("GET /snapshot.jpg", func(w http.ResponseWriter, r *http.Request) {
		mjpeg.ServeStill(w, r, &s.latest, etag)
	})
	mux.HandleFunc("GET /stream.mjpg", func(w http.ResponseWriter, r *http.Request) {
		s.streams.Serve(s.ctx, w, r, &s.latest)
	})
}
