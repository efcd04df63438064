package queue

import (
	"context"
	"log/slog"
	"time"
)

// The drop policy, in one place. Every path that must free room asks
// planLocked which frames go, and loses them through dropLocked, which
// counts and logs each one:
//
//   - Put over the memory or spool limits (placeLocked);
//   - spool files over limits lowered since they were written, at Open
//     (recover);
//   - frames written to the spool at Close (spoolAtCloseLocked);
//   - a spool file system that fills before the spool limits do, ENOSPC
//     or EDQUOT on a write (evictForSpace).
//
// The order is the same for all of them (policy.walk): untriggered frames
// before triggered ones (unless NoTriggerPriority), and within each class
// the oldest first under DropOldest, the newest first under DropNewest. The
// frame room is being made for is part of that order; when the walk reaches
// it before enough room is made, that frame is the one that goes. Frames in
// flight (handed out by Next) or being written are never victims. The
// reason is "full-oldest" or "full-newest" (policy.reason) whichever path
// it was.
//
// Expiry (expiry.go) drops every frame past MaxAge, not a victim chosen to
// make room, but through the same dropLocked. Frames lost to a damaged
// spool file (readFailed) or to refusals (Refused) are counted under their
// own reasons with their own warnings.

// policy is the drop order of Options.Drop and NoTriggerPriority.
type policy struct {
	drop       DropPolicy
	noPriority bool
}

// reason is the Stats.Dropped key of a frame lost to a full queue.
func (p policy) reason() string {
	if p.drop == DropNewest {
		return ReasonFullNewest
	}
	return ReasonFullOldest
}

// walk visits items (in capture order) in the order the policy sacrifices
// them, until visit returns true. incoming, if not nil, is a frame not
// queued yet, visited as the newest of its class.
func (p policy) walk(items []*entry, incoming *entry, visit func(*entry) bool) {
	classes := []bool{false, true}
	if p.noPriority {
		classes = classes[:1]
	}
	for _, triggered := range classes {
		match := func(e *entry) bool { return p.noPriority || e.triggered == triggered }
		if p.drop == DropNewest {
			if incoming != nil && match(incoming) && visit(incoming) {
				return
			}
			for i := len(items) - 1; i >= 0; i-- {
				if e := items[i]; match(e) && visit(e) {
					return
				}
			}
			continue
		}
		for _, e := range items {
			if match(e) && visit(e) {
				return
			}
		}
		if incoming != nil && match(incoming) && visit(incoming) {
			return
		}
	}
}

// need is the room a path must make.
type need struct {
	// cand is the frame the room is for; when the walk reaches it, it is
	// the one the policy sacrifices. nil: no such frame (recover).
	cand *entry
	// queued says cand is in q.items already; otherwise it is visited as
	// the newest frame.
	queued bool
	// tiers are where the room is wanted, in order of preference; a
	// victim must free room in one of them.
	tiers []tier
	// frames and bytes are the room to make: frames 1 for one more frame,
	// 0 to bring the tiers back within their limits.
	frames int
	bytes  int64
	// first: the room cannot be computed (a full file system frees
	// nothing the queue counts); stop at the first victim.
	first bool
}

// plan is planLocked's answer.
type plan struct {
	// victims go, in this order, for the room to be made.
	victims []*entry
	// ok: the room is made once victims go (with first: there is a
	// victim). Otherwise cand is the frame the policy sacrifices, and
	// victims must stay.
	ok bool
	// tier is where cand then fits.
	tier tier
}

// planLocked decides which frames go to make the room n describes. It
// changes nothing; the caller drops plan.victims (evictLocked) or cand.
func (q *Queue) planLocked(n need) plan {
	var pl plan
	if !n.first {
		if pl.tier, pl.ok = q.roomLocked(n.tiers, n.frames, n.bytes, 0, 0, 0, 0); pl.ok {
			return pl
		}
	}
	incoming := n.cand
	if n.queued {
		incoming = nil
	}
	var dm, ds int
	var dmb, dsb int64
	q.pol.walk(q.items, incoming, func(v *entry) bool {
		if v == n.cand {
			return true // the policy reaches the frame itself: it goes
		}
		if !evictable(v, n.tiers) {
			return false
		}
		pl.victims = append(pl.victims, v)
		if n.first {
			pl.ok = true
			return true
		}
		if v.resident {
			dm, dmb = dm+1, dmb+v.size
		}
		if v.spooled {
			ds, dsb = ds+1, dsb+v.size
		}
		pl.tier, pl.ok = q.roomLocked(n.tiers, n.frames, n.bytes, dm, dmb, ds, dsb)
		return pl.ok
	})
	return pl
}

// evictable reports whether dropping v frees room in one of tiers: it is
// neither in flight nor being written, and it is counted there.
func evictable(v *entry, tiers []tier) bool {
	if v.out || v.writing || v.gone {
		return false
	}
	for _, t := range tiers {
		if (t == tierMemory && v.resident) || (t == tierSpool && v.spooled) {
			return true
		}
	}
	return false
}

// evictLocked drops the victims of a plan under the policy's reason and
// returns del with their spool files appended.
func (q *Queue) evictLocked(victims []*entry, del []string) []string {
	for _, v := range victims {
		del = q.discardLocked(v, q.pol.reason(), del)
	}
	return del
}

// roomLocked returns the first tier with room for frames more frames of
// size bytes once the given frames and bytes are freed from memory (dm,
// dmb) and spool (ds, dsb).
func (q *Queue) roomLocked(tiers []tier, frames int, size int64, dm int, dmb int64, ds int, dsb int64) (tier, bool) {
	for _, t := range tiers {
		switch t {
		case tierMemory:
			if q.memN-dm+frames <= q.opt.MemoryFrames && q.memBytes-dmb+size <= q.opt.MemoryBytes {
				return t, true
			}
		case tierSpool:
			if q.spN-ds+frames <= q.opt.SpoolMaxFrames && q.spBytes-dsb+size <= q.opt.SpoolMaxBytes {
				return t, true
			}
		}
	}
	return 0, false
}

// discardLocked removes e, counts and logs the drop, and appends its file
// to del if it has one.
func (q *Queue) discardLocked(e *entry, reason string, del []string) []string {
	file, spooled := e.file, e.spooled
	q.removeLocked(e)
	q.dropLocked(e, reason)
	if spooled {
		del = append(del, file)
	}
	return del
}

// dropWarnEvery bounds the warnings about drops: during a long outage
// without a spool every frame is dropped, and a warning per frame (30 a
// second) would flood the journal on an SD card. Every drop is still
// logged: the first of a reason in each period as a warning that also
// says how many went by since the last one, the others at debug level.
const dropWarnEvery = 10 * time.Second

// dropLog is the warning schedule of one drop reason (or of spool write
// errors, spoolWriteErrorKey).
type dropLog struct {
	last       time.Time
	suppressed uint64 // logged at debug level since the last warning
}

// warnLocked reports whether the next line under key is due as a warning,
// and how many went at debug level since the last one; it books the line.
func (q *Queue) warnLocked(key string, now time.Time) (warn bool, suppressed uint64) {
	dl := q.dropLogs[key]
	if dl == nil {
		dl = &dropLog{}
		q.dropLogs[key] = dl
	}
	if dl.last.IsZero() || now.Sub(dl.last) >= dropWarnEvery {
		suppressed = dl.suppressed
		dl.last, dl.suppressed = now, 0
		return true, suppressed
	}
	dl.suppressed++
	return false, 0
}

// dropLocked counts e as lost for reason and logs it, rate-limited.
func (q *Queue) dropLocked(e *entry, reason string) {
	q.dropped[reason]++
	level := slog.LevelDebug
	attrs := []any{"reason", reason, "seq", e.frame.Seq, "trigger", e.frame.Trigger,
		"source", e.frame.Source, "captured", e.frame.Time, "bytes", e.size, "policy", q.opt.Drop}
	if warn, suppressed := q.warnLocked(reason, q.now()); warn {
		level = slog.LevelWarn
		attrs = append(attrs, "dropped_since_last_warning", suppressed, "total", q.dropped[reason])
	}
	q.log.Log(context.Background(), level, "queue: frame dropped", attrs...)
}
