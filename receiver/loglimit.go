package receiver

import (
	"log/slog"
	"sync"
	"time"
)

// Repeated failures of one kind (a flood of connections that never send a
// request, failed TLS handshakes, peers vanishing mid-frame) would
// otherwise log one WARN line per connection. failLogs lets the first
// failLogBurst of a kind through in full, then at most one a period; the
// ones held back are logged at debug and summed up in one WARN line at
// the end of the period ("repeated failures": reason, count, the last
// message). Every one is still counted in framerecv_rejects_total. The
// kind is the counted reason, a fixed set, so the limiter's memory is
// bounded whatever peers send.
const (
	failLogBurst  = 10
	failLogPeriod = time.Second
)

type failLogs struct {
	mu    sync.Mutex
	kinds map[string]*failKind
}

type failKind struct {
	tokens     float64
	refilled   time.Time
	suppressed int    // held back since the last line
	lastMsg    string // of the last one held back
	flushing   bool   // a summary is scheduled
}

// allow reports whether a failure of kind may be logged in full now, and
// how many were held back since the last full line. When it returns
// false, the caller logs at debug; summary is called with the number held
// back once the period ends, unless a full line reported them first.
func (l *failLogs) allow(kind, msg string, summary func(held int, lastMsg string)) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.kinds == nil {
		l.kinds = make(map[string]*failKind)
	}
	now := time.Now()
	k := l.kinds[kind]
	if k == nil {
		k = &failKind{tokens: failLogBurst, refilled: now}
		l.kinds[kind] = k
	}
	k.tokens = min(failLogBurst, k.tokens+now.Sub(k.refilled).Seconds()/failLogPeriod.Seconds())
	k.refilled = now
	if k.tokens >= 1 {
		k.tokens--
		n := k.suppressed
		k.suppressed = 0
		return true, n
	}
	k.suppressed++
	k.lastMsg = msg
	if !k.flushing {
		k.flushing = true
		time.AfterFunc(failLogPeriod, func() {
			l.mu.Lock()
			n, last := k.suppressed, k.lastMsg
			k.suppressed, k.flushing = 0, false
			l.mu.Unlock()
			if n > 0 {
				summary(n, last)
			}
		})
	}
	return false, 0
}

// logFailure logs one connection's failure through the limiter of its
// reason.
func (s *Server) logFailure(log *slog.Logger, reason, msg string, attrs []any) {
	full, held := s.failLogs.allow(reason, msg, func(held int, last string) {
		s.log.Warn("repeated failures (details logged at debug)", "reason", reason, "count", held, "period", failLogPeriod, "last", last)
	})
	if !full {
		log.Debug(msg, attrs...)
		return
	}
	if held > 0 {
		attrs = append(attrs, "suppressed_since_last", held)
	}
	log.Warn(msg, attrs...)
}
