package queue

import (
	"context"
	"log/slog"
)

// A spool on a file system smaller than SpoolMaxBytes (a 2 MiB partition,
// a card shared with logs) fills before the queue's own limits are
// reached. ENOSPC or EDQUOT on a spool write is then handled like a full
// queue, by the drop policy (policy.go): the policy's victims are dropped
// (reason "full-oldest" or "full-newest") one at a time until the new
// frame's write succeeds; when the policy reaches the new frame itself
// (under DropNewest, an untriggered one at once) the write fails and the
// frame is refused unless memory has room for it.

// evictForSpace drops the spooled frame the policy sacrifices first to make
// room for e (queued, being written), deleting its file to free disk
// space. It reports false when the policy sacrifices e itself, or when no
// spooled frame can go.
func (q *Queue) evictForSpace(e *entry) bool {
	q.mu.Lock()
	pl := q.planLocked(need{cand: e, queued: true, tiers: tiersSpool, first: true})
	if !pl.ok || q.closed {
		q.mu.Unlock()
		return false
	}
	del := q.evictLocked(pl.victims, nil)
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
	level := slog.LevelDebug
	attrs := []any{"seq", e.frame.Seq, "err", err}
	if warn, suppressed := q.warnLocked(spoolWriteErrorKey, q.now()); warn {
		level = slog.LevelError
		attrs = append(attrs, "failed_since_last_error", suppressed, "spool_errors", q.spoolErrors)
	}
	q.log.Log(context.Background(), level, "queue: cannot write frame to the spool", attrs...)
}
