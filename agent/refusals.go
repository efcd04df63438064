package agent

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// refusalWarnEvery bounds the warnings about refused frames: with a
// receiver that refuses every frame (a --max-frame-size below the camera's
// frames) a warning per frame would flood the journal. As with the queue's
// drop warnings, the first in each period is a warning that says how many
// went by since the last one; the others are logged at debug level.
const refusalWarnEvery = 10 * time.Second

// rateLog logs one message kind at most once per refusalWarnEvery at
// warning level.
type rateLog struct {
	mu         sync.Mutex
	last       time.Time
	suppressed uint64
	total      uint64
}

func (r *rateLog) log(l *slog.Logger, msg string, attrs ...any) {
	r.mu.Lock()
	now := time.Now()
	r.total++
	level := slog.LevelDebug
	if r.last.IsZero() || now.Sub(r.last) >= refusalWarnEvery {
		level = slog.LevelWarn
		attrs = append(attrs, "refused_since_last_warning", r.suppressed, "refused_total", r.total)
		r.last, r.suppressed = now, 0
	} else {
		r.suppressed++
	}
	r.mu.Unlock()
	l.Log(context.Background(), level, msg, attrs...)
}

// refusal books a refusal of a frame by a receiver that is up, for health.
func (a *Agent) refusal(err error) {
	a.refusedInARow.Add(1)
	a.lastRefusal.Store(time.Now().UnixNano())
	msg := err.Error()
	a.lastRefusalIs.Store(&msg)
}
