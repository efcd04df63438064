package queue

import (
	"context"
	"log/slog"
)

// A spool on a file system smaller than SpoolMaxBytes (a 2 MiB partition,
// a card shared with logs) fills before the queue's own limits are
// reached. ENOSPC or EDQUOT on a spool write is then handled like a full
// queue, by the drop policy: under DropOldest the oldest spooled frames
// are dropped (reason "full-oldest") one at a time until the new frame's
// write succeeds; under DropNewest the new frame is refused (reason
// "full-newest") unless memory has room for it.

// evictForSpace drops the oldest spooled frame that is not in flight or
// being written (other than e) to free disk space, deleting its file. It
// reports false when there is none.
func (q *Queue) evictForSpace(e *entry) bool {
	q.mu.Lock()
	var victim *entry
	q.walkVictims(nil, func(v *entry) bool {
		if v == e || v.out || v.writing || !v.spooled || v.gone {
			return false
		}
		victim = v
		return true
	})
	if victim == nil || q.closed {
		q.mu.Unlock()
		return false
	}
	del := q.discardLocked(victim, ReasonFullOldest, nil)
	q.mu.Unlock()
	for _, name := range del {
		if err := q.sp.remove(name); err != nil {
			q.mu.Lock()
			q.spoolErrors++
			q.mu.Unlock()
			return false
		}
	}
	return true
}

// spoolWriteErrorKey is the schedule of spool write errors in dropLogs.
const spoolWriteErrorKey = "\x00spool-write"

// spoolErrorLocked logs a failed spool write: like drop warnings, one
// ERROR line per dropWarnEvery saying how many failed since the last one,
// the others at debug level (a full disk fails every frame, 30 a second).
func (q *Queue) spoolErrorLocked(e *entry, err error) {
	now := q.now()
	dl := q.dropLogs[spoolWriteErrorKey]
	if dl == nil {
		dl = &dropLog{}
		q.dropLogs[spoolWriteErrorKey] = dl
	}
	level := slog.LevelDebug
	attrs := []any{"seq", e.frame.Seq, "err", err}
	if dl.last.IsZero() || now.Sub(dl.last) >= dropWarnEvery {
		level = slog.LevelError
		attrs = append(attrs, "failed_since_last_error", dl.suppressed, "spool_errors", q.spoolErrors)
		dl.last, dl.suppressed = now, 0
	} else {
		dl.suppressed++
	}
	q.log.Log(context.Background(), level, "queue: cannot write frame to the spool", attrs...)
}
