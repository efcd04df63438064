package agent

import (
	"fmt"
	"time"

	"framepush/queue"
	"framepush/sender"
)

// This file is what the agent says about itself: the watchdog check
// (stuck), the Snapshot behind /metrics, /healthz (Health) and the
// periodic status line.

// stuck explains why the agent looks hung (and the systemd watchdog
// should not be fed), or returns "". A Capture call may legitimately last
// long while a lost camera is retried, so the capture side counts as
// stuck only when it made no progress (no frame, no reopen attempt) for
// longer than one retry can take; a Send call is bounded by its timeouts
// and backoff.
func (a *Agent) stuck(p *pipeline) string {
	now := time.Now()
	c := p.cfg
	if s := p.inCapture.Load(); s != 0 {
		bound := c.Source.FrameTimeout + c.Source.Reopen.Max + time.Minute
		last := max(p.progress.Load(), s)
		if d := now.Sub(time.Unix(0, last)); d > bound {
			return fmt.Sprintf("capture made no progress for %v", d.Round(time.Second))
		}
	}
	if s := p.inSend.Load(); s != 0 {
		n := time.Duration(len(c.Server.Addresses))
		bound := n*c.Server.ConnectTimeout + 3*c.Server.AnswerTimeout + c.Server.Backoff.Max + 2*time.Minute
		if d := now.Sub(time.Unix(0, s)); d > bound {
			return fmt.Sprintf("one frame has been sending for %v", d.Round(time.Second))
		}
	}
	return ""
}

// Snapshot is the agent's state at one moment, for metrics and health.
type Snapshot struct {
	LinkUp         bool
	Connects       uint64
	Reconnects     uint64
	CameraUp       bool
	CameraReopens  uint64
	CameraFailures uint64
	CameraError    string
	CameraDownFor  time.Duration
	Events         uint64
	Coalesced      uint64
	CaptureErrors  uint64
	LastCapture    time.Time
	LastDelivery   time.Time
	Window         int // frames the open connection may have unanswered (0: stop-and-wait)
}

func (a *Agent) snapshot() Snapshot {
	s := Snapshot{LinkUp: a.linkUp.Load(), Events: a.events.Load(),
		LastCapture: unixTime(a.lastCapture.Load()), LastDelivery: unixTime(a.lastDelivery.Load())}
	a.mu.Lock()
	p := a.pipe
	s.Connects, s.Reconnects = a.retiredConnects, a.retiredReconnects
	var ts sender.Stats
	if p != nil {
		ts = p.tx.Stats() // under mu: retire cannot fold p in between
	}
	a.mu.Unlock()
	if p == nil {
		return s
	}
	s.Connects += ts.Connects
	s.Reconnects += ts.Reconnects
	if ts.Connected {
		s.LinkUp = true
	}
	s.Window = ts.Window
	if l := p.loop.Load(); l != nil {
		ls := l.Stats()
		s.Coalesced, s.CaptureErrors = ls.Coalesced, ls.CaptureErrors
	}
	rs := p.src.Stats()
	s.CameraUp = rs.Opens > 0 && !rs.Down
	s.CameraReopens, s.CameraFailures, s.CameraError = rs.Reopens, rs.Failures, rs.LastError
	if rs.Down && !rs.DownSince.IsZero() {
		s.CameraDownFor = time.Since(rs.DownSince)
	}
	return s
}

func unixTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Health is the /healthz answer.
type Health struct {
	Healthy      bool     `json:"healthy"`
	Problems     []string `json:"problems,omitempty"`
	Camera       string   `json:"camera"` // up, down, not-opened
	Link         string   `json:"link"`   // up, down
	Queued       int      `json:"queued"`
	Spooled      int      `json:"spooled"`
	LastCapture  string   `json:"last_capture,omitempty"`
	LastDelivery string   `json:"last_delivery,omitempty"`
}

// Health says whether the agent is doing its job: capturing (for
// continuous and interval triggers: a frame within healthy_within or two
// periods; for event triggers: the camera not down for longer than
// healthy_within) and pushing (nothing queued, or a delivery within
// healthy_within; and not a receiver refusing every frame sent since the
// last delivery, if that was more than healthy_within ago).
func (a *Agent) Health() Health {
	cfg := a.Config()
	s := a.snapshot()
	st := a.queue.Stats()
	within := cfg.HTTP.HealthyWithin
	h := Health{Camera: "not-opened", Link: "down", Queued: st.Pending, Spooled: st.SpoolFrames}
	if s.LinkUp {
		h.Link = "up"
	}
	switch {
	case s.CameraUp:
		h.Camera = "up"
	case s.CameraFailures > 0:
		h.Camera = "down"
	}
	if !s.LastCapture.IsZero() {
		h.LastCapture = s.LastCapture.Format(time.RFC3339Nano)
	}
	if !s.LastDelivery.IsZero() {
		h.LastDelivery = s.LastDelivery.Format(time.RFC3339Nano)
	}
	since := func(t time.Time) time.Duration {
		if t.IsZero() {
			t = a.started
		}
		return time.Since(t)
	}
	switch cfg.Trigger.Type {
	case "continuous", "interval":
		limit := within
		period := cfg.Trigger.Interval
		if cfg.Trigger.Type == "continuous" && cfg.Trigger.FPS > 0 {
			period = time.Duration(float64(time.Second) / cfg.Trigger.FPS)
		}
		limit = max(limit, 2*period)
		if d := since(s.LastCapture); d > limit {
			h.Problems = append(h.Problems, fmt.Sprintf("no frame captured for %v (camera: %s %s)", d.Round(time.Second), h.Camera, s.CameraError))
		}
	default:
		if s.CameraDownFor > within {
			h.Problems = append(h.Problems, fmt.Sprintf("camera down for %v: %s", s.CameraDownFor.Round(time.Second), s.CameraError))
		}
	}
	if st.Pending > 0 {
		if d := since(s.LastDelivery); d > within {
			h.Problems = append(h.Problems, fmt.Sprintf("%d frames queued and none delivered for %v", st.Pending, d.Round(time.Second)))
		}
	}
	// A link that delivers nothing: the receiver answers, but refuses
	// every frame (permanently, so nothing stays queued, or after the
	// payload), and nothing was delivered for healthy_within.
	if n := a.refusedInARow.Load(); n > 0 {
		if d := since(s.LastDelivery); d > within {
			last := ""
			if p := a.lastRefusalIs.Load(); p != nil {
				last = *p
			}
			h.Problems = append(h.Problems, fmt.Sprintf("the receiver refused the last %d frames and none was delivered for %v: %s",
				n, d.Round(time.Second), last))
		}
	}
	h.Healthy = len(h.Problems) == 0
	return h
}

func (a *Agent) logStatus() {
	st := a.queue.Stats()
	s := a.snapshot()
	a.log.Info("status", "captured", a.metrics.captured.Get(), "delivered", a.metrics.sent.Get(),
		"queued", st.Pending, "spooled", st.SpoolFrames, "spool_bytes", st.SpoolBytes,
		"dropped", dropTotal(st)+a.metrics.rejected.Get(), "link_up", s.LinkUp, "camera_up", s.CameraUp)
}

func dropTotal(st queue.Stats) uint64 {
	var n uint64
	for _, v := range st.Dropped {
		n += v
	}
	return n
}
