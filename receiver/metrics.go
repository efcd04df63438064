package receiver

import (
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/VictoriaMetrics/metrics"

	"framepush/wire"
)

// Reasons a connection or frame is refused that are not sent as an ERR
// answer (the peer is gone or cannot read one); they are counted with the
// wire reasons.
const (
	ReasonDisconnect = "disconnect" // the client closed or reset mid-message or mid-frame
	ReasonTLS        = "tls"        // the TLS handshake failed
	ReasonBusyPeer   = "busy-peer"  // the peer's IP holds MaxConnsPerPeer connections (answered "ERR busy")
)

// countedReasons are created up front so that /metrics shows every reason,
// zero or not.
var countedReasons = []string{
	wire.ReasonBadSize, wire.ReasonTooLarge, wire.ReasonBadMeta, wire.ReasonProtocol,
	wire.ReasonChecksum, wire.ReasonDiskFull, wire.ReasonBusy, wire.ReasonTimeout,
	wire.ReasonInternal, ReasonDisconnect, ReasonTLS, ReasonBusyPeer,
}

// serverMetrics are one Server's counters, in their own Set so that
// several servers (tests) never share them.
type serverMetrics struct {
	set        *metrics.Set
	frames     *metrics.Counter
	bytes      *metrics.Counter
	conns      *metrics.Counter
	leftovers  *metrics.Counter
	idleClosed *metrics.Counter
	frameTime  *metrics.PrometheusHistogram
	mu         sync.Mutex
	rejects    map[string]*metrics.Counter
}

func newServerMetrics(active func() float64, diskFree func() float64) *serverMetrics {
	s := metrics.NewSet()
	m := &serverMetrics{
		set:        s,
		frames:     s.NewCounter("framerecv_frames_total"),
		bytes:      s.NewCounter("framerecv_bytes_total"),
		conns:      s.NewCounter("framerecv_connections_total"),
		leftovers:  s.NewCounter("framerecv_leftovers_cleaned_total"),
		idleClosed: s.NewCounter("framerecv_idle_closed_total"),
		frameTime:  s.NewPrometheusHistogram("framerecv_frame_seconds"),
		rejects:    make(map[string]*metrics.Counter),
	}
	s.NewGauge("framerecv_connections_active", active)
	if diskFree != nil {
		s.NewGauge("framerecv_disk_free_bytes", diskFree)
	}
	for _, r := range countedReasons {
		m.rejects[r] = s.NewCounter(fmt.Sprintf("framerecv_rejects_total{reason=%q}", r))
	}
	return m
}

// reject counts one refusal for reason.
func (m *serverMetrics) reject(reason string) {
	m.mu.Lock()
	c, ok := m.rejects[reason]
	if !ok {
		c = m.set.GetOrCreateCounter(fmt.Sprintf("framerecv_rejects_total{reason=%q}", reason))
		m.rejects[reason] = c
	}
	m.mu.Unlock()
	c.Inc()
}

func (m *serverMetrics) rejectCounts() map[string]uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]uint64, len(m.rejects))
	for r, c := range m.rejects {
		if v := c.Get(); v > 0 {
			out[r] = v
		}
	}
	return out
}

// Stats is a snapshot of a Server's counters.
type Stats struct {
	Frames           uint64            // frames stored and acknowledged
	Bytes            uint64            // payload bytes of those frames
	Rejects          map[string]uint64 // refusals by reason (wire reasons, "disconnect", "tls", "busy-peer"); only non-zero ones
	ActiveConns      int64             // connections open now
	Conns            uint64            // connections accepted since start
	LeftoversCleaned uint64            // temporary files from a crash removed at start
	IdleClosed       uint64            // persistent connections closed after IdleTimeout
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	return Stats{
		Frames:           s.m.frames.Get(),
		Bytes:            s.m.bytes.Get(),
		Rejects:          s.m.rejectCounts(),
		ActiveConns:      s.active.Load(),
		Conns:            s.m.conns.Get(),
		LeftoversCleaned: s.m.leftovers.Get(),
		IdleClosed:       s.m.idleClosed.Get(),
	}
}

// PrometheusWriter is implemented by a Store that has metrics of its own;
// Handler appends them to /metrics.
type PrometheusWriter interface {
	WritePrometheus(w io.Writer)
}

// Handler serves /metrics (Prometheus text format: this server's counters,
// the store's if it has any, plus process and Go runtime metrics), and
// /healthz and /readyz (200 "ok" while serving with the store usable: disk
// space above the floor, the object store reachable; 503 with the reason
// otherwise, so that a load balancer drains this instance).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		s.m.set.WritePrometheus(w)
		if pw, ok := s.store.(PrometheusWriter); ok {
			pw.WritePrometheus(w)
		}
		metrics.WriteProcessMetrics(w)
	})
	mux.HandleFunc("/readyz", s.serveHealth)
	mux.HandleFunc("/healthz", s.serveHealth)
	return mux
}

func (s *Server) serveHealth(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if problem := s.health(); problem != "" {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, problem)
		return
	}
	fmt.Fprintln(w, "ok")
}
