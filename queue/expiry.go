package queue

import "time"

// Expiry. A frame older than MaxAge (by capture time) leaves the queue,
// counted and logged as "expired", where frames move: Put, Next, Ack, Nack
// and Refused each expire what is due, and so does Open for the frames it
// recovers. A queue where nothing moves still expires its frames: the
// receiver is down, a GPIO trigger is quiet so nothing is put, and the
// sender sits in its backoff with one frame in flight. For that a timer
// (expireDue) is armed for the next frame due, re-armed by every scan.
// Frames in flight or being written do not expire under their user; they
// can again once nacked (Nack scans) or written (finishWrite arms the timer
// for them). Stats only reads. After Close nothing expires: Close spools
// what is left.

// expiryMinDelay bounds how often the timer runs: a clock that stands still
// (or a frame due within a nanosecond) must not make it spin.
const expiryMinDelay = 10 * time.Millisecond

func (q *Queue) expired(t, now time.Time) bool {
	return q.opt.MaxAge > 0 && now.Sub(t) > q.opt.MaxAge
}

// dueAt is when e expires: the first instant that is more than MaxAge
// after its capture.
func (q *Queue) dueAt(e *entry) time.Time {
	return e.frame.Time.Add(q.opt.MaxAge + time.Nanosecond)
}

// expireLocked drops frames older than MaxAge that are not in flight or
// being written, appending files to delete to del, and arms the timer for
// the next frame due.
func (q *Queue) expireLocked(now time.Time, del []string) []string {
	if q.opt.MaxAge <= 0 || q.closed {
		return del
	}
	var next time.Time
	keep := q.items[:0]
	removed := false
	for _, e := range q.items {
		if e.out || e.writing {
			keep = append(keep, e)
			continue
		}
		if !q.expired(e.frame.Time, now) {
			keep = append(keep, e)
			if at := q.dueAt(e); next.IsZero() || at.Before(next) {
				next = at
			}
			continue
		}
		if e.spooled {
			del = append(del, e.file)
		}
		e.gone = true
		q.unaccount(e)
		q.dropLocked(e, ReasonExpired)
		removed = true
	}
	clear(q.items[len(keep):])
	q.items = keep
	if removed {
		q.changedLocked()
	}
	q.armExpiryLocked(next)
	return del
}

// expireDue is the timer's work (and Open's): expire what is due now.
func (q *Queue) expireDue() {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.expiryAt = time.Time{} // fired: the scan arms it again
	del := q.expireLocked(q.now(), nil)
	q.startIOLocked(del)
	q.mu.Unlock()
	q.removeFiles(del)
}

// armForLocked arms the timer for e if e is due before the timer fires,
// for a frame that can expire again (written, back from flight).
func (q *Queue) armForLocked(e *entry) {
	if q.opt.MaxAge <= 0 || q.closed || e.gone || e.out || e.writing {
		return
	}
	if at := q.dueAt(e); q.expiryAt.IsZero() || at.Before(q.expiryAt) {
		q.armExpiryLocked(at)
	}
}

// armExpiryLocked makes the timer fire at at (by q.now), or stops it when
// at is zero.
func (q *Queue) armExpiryLocked(at time.Time) {
	if at.IsZero() {
		q.stopExpiryLocked()
		return
	}
	if at.Equal(q.expiryAt) {
		return
	}
	d := max(at.Sub(q.now()), expiryMinDelay)
	if q.expiry == nil {
		q.expiry = time.AfterFunc(d, q.expireDue)
	} else {
		q.expiry.Reset(d)
	}
	q.expiryAt = at
}

func (q *Queue) stopExpiryLocked() {
	if q.expiry != nil {
		q.expiry.Stop()
	}
	q.expiryAt = time.Time{}
}
