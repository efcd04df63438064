package agent

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"framepush/internal/version"
	"framepush/queue"
)

// ReasonRejected counts frames the receiver refused permanently (ERR
// too-large, bad-meta, ...): retrying them could never succeed.
const ReasonRejected = "rejected"

// agentMetrics are the counters the agent keeps itself; queue, sender and
// camera state are read from their Stats at scrape time, so there is one
// source of truth for each number.
type agentMetrics struct {
	set         *metrics.Set
	captured    *metrics.Counter
	sent        *metrics.Counter
	sentBytes   *metrics.Counter
	failures    *metrics.Counter
	rejected    *metrics.Counter
	putDropped  *metrics.Counter
	sendSeconds *metrics.PrometheusHistogram
	reloads     *metrics.Counter
	reloadFails *metrics.Counter
	// deadLettered counts frames moved to the dead-letter folder.
	deadLettered *metrics.Counter
}

func newAgentMetrics(a *Agent) *agentMetrics {
	s := metrics.NewSet()
	m := &agentMetrics{
		set:         s,
		captured:    s.NewCounter("framepush_frames_captured_total"),
		sent:        s.NewCounter("framepush_frames_sent_total"),
		sentBytes:   s.NewCounter("framepush_bytes_sent_total"),
		failures:    s.NewCounter("framepush_send_failures_total"),
		rejected:    s.NewCounter(`framepush_frames_rejected_total`),
		putDropped:  s.NewCounter("framepush_frames_refused_total"),
		sendSeconds: s.NewPrometheusHistogram("framepush_send_seconds"),
		reloads:     s.NewCounter("framepush_config_reloads_total"),
		reloadFails: s.NewCounter("framepush_config_reload_failures_total"),

		deadLettered: s.NewCounter("framepush_dead_letters_total"),
	}
	s.NewGauge(fmt.Sprintf("framepush_build_info{version=%q}", version.Version), func() float64 { return 1 })

	// One queue snapshot and one agent snapshot serve all gauges of a scrape.
	qs := &cached[queue.Stats]{get: a.queue.Stats}
	as := &cached[Snapshot]{get: a.snapshot}
	for _, r := range append(append([]string{}, queue.DropReasons...), ReasonRejected) {
		r := r
		s.NewGauge(fmt.Sprintf("framepush_frames_dropped_total{reason=%q}", r), func() float64 {
			if r == ReasonRejected {
				return float64(m.rejected.Get())
			}
			return float64(qs.value().Dropped[r])
		})
	}
	gauge := func(name string, f func(queue.Stats) float64) {
		s.NewGauge(name, func() float64 { return f(qs.value()) })
	}
	gauge("framepush_queue_frames", func(st queue.Stats) float64 { return float64(st.Pending) })
	gauge("framepush_queue_memory_frames", func(st queue.Stats) float64 { return float64(st.MemoryFrames) })
	gauge("framepush_queue_memory_bytes", func(st queue.Stats) float64 { return float64(st.MemoryBytes) })
	gauge("framepush_spool_frames", func(st queue.Stats) float64 { return float64(st.SpoolFrames) })
	gauge("framepush_spool_bytes", func(st queue.Stats) float64 { return float64(st.SpoolBytes) })
	gauge("framepush_frames_spooled_total", func(st queue.Stats) float64 { return float64(st.Spooled) })
	gauge("framepush_frames_recovered_total", func(st queue.Stats) float64 { return float64(st.Recovered) })
	gauge("framepush_spool_errors_total", func(st queue.Stats) float64 { return float64(st.SpoolErrors) })
	gauge("framepush_frames_retried_total", func(st queue.Stats) float64 { return float64(st.Retried) })
	gauge("framepush_dead_letter_frames", func(st queue.Stats) float64 { return float64(st.DeadLetters) })
	gauge("framepush_queue_oldest_age_seconds", func(st queue.Stats) float64 { return st.OldestAge.Seconds() })

	s.NewGauge("framepush_link_up", func() float64 { return b2f(as.value().LinkUp) })
	s.NewGauge("framepush_connects_total", func() float64 { return float64(as.value().Connects) })
	s.NewGauge("framepush_reconnects_total", func() float64 { return float64(as.value().Reconnects) })
	s.NewGauge("framepush_window_frames", func() float64 { return float64(as.value().Window) })
	s.NewGauge("framepush_memory_limit_bytes", func() float64 { return float64(a.memLimit.Load()) })
	s.NewGauge("framepush_camera_up", func() float64 { return b2f(as.value().CameraUp) })
	s.NewGauge("framepush_camera_reopens_total", func() float64 { return float64(as.value().CameraReopens) })
	s.NewGauge("framepush_camera_failures_total", func() float64 { return float64(as.value().CameraFailures) })
	s.NewGauge("framepush_trigger_events_total", func() float64 { return float64(as.value().Events) })
	s.NewGauge("framepush_trigger_coalesced_total", func() float64 { return float64(as.value().Coalesced) })
	s.NewGauge("framepush_capture_errors_total", func() float64 { return float64(as.value().CaptureErrors) })
	s.NewGauge("framepush_last_capture_age_seconds", func() float64 { return age(as.value().LastCapture) })
	s.NewGauge("framepush_last_success_age_seconds", func() float64 { return age(as.value().LastDelivery) })
	return m
}

// cached reuses one snapshot for the gauges of one scrape (they are read
// back to back); a snapshot is at most 100 ms old.
type cached[T any] struct {
	get  func() T
	mu   sync.Mutex
	at   time.Time
	last T
}

func (c *cached[T]) value() T {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) > 100*time.Millisecond {
		c.last, c.at = c.get(), time.Now()
	}
	return c.last
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// age is seconds since t, or -1 when it never happened (a gauge cannot be
// absent, and 0 would read as "just now").
func age(t time.Time) float64 {
	if t.IsZero() {
		return -1
	}
	return time.Since(t).Seconds()
}

// Handler serves /metrics (Prometheus text) and /healthz (JSON; 200 when
// healthy, 503 otherwise, with the reasons).
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		a.metrics.set.WritePrometheus(w)
		metrics.WriteProcessMetrics(w)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		h := a.Health()
		w.Header().Set("Content-Type", "application/json")
		if !h.Healthy {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(h)
	})
	a.snap.register(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, "%s\n\n/healthz       health (JSON; 503 when unhealthy)\n/metrics       Prometheus metrics\n/snapshot.jpg  the newest captured frame\n/stream.mjpg   MJPEG stream of the frames as they are captured\n", version.String("framepush"))
	})
	return mux
}
