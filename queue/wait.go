package queue

import "context"

// Waiting for the queue to empty. The agent's orderly stop delivers what is
// queued before it closes the link; rather than polling Stats it blocks in
// WaitEmpty (or, when a reload replaces the sender, WaitSettled), woken by
// q.changed: a channel closed, and replaced by the next waiter, whenever a
// frame leaves the queue (removeLocked: delivered, dropped, dead-lettered;
// expireLocked), is settled by Nack, or the queue closes.

// WaitEmpty blocks until no frame is queued: every one delivered,
// dead-lettered, dropped or expired. It returns nil then, ctx's error when
// ctx ends first, or ErrClosed once the queue is closed (what Close left is
// spooled for the next run, or dropped as "shutdown").
func (q *Queue) WaitEmpty(ctx context.Context) error {
	return q.waitUntil(ctx, func() bool { return len(q.items) == 0 })
}

// WaitSettled blocks until no frame is handed out by Next without an Ack,
// Nack or Refused yet; it returns like WaitEmpty.
func (q *Queue) WaitSettled(ctx context.Context) error {
	return q.waitUntil(ctx, func() bool {
		for _, e := range q.items {
			if e.out {
				return false
			}
		}
		return true
	})
}

// waitUntil blocks until cond, called under mu, holds.
func (q *Queue) waitUntil(ctx context.Context, cond func() bool) error {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return ErrClosed
		}
		if cond() {
			q.mu.Unlock()
			return nil
		}
		if q.changed == nil {
			q.changed = make(chan struct{})
		}
		changed := q.changed
		q.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// changedLocked wakes the waiters of waitUntil.
func (q *Queue) changedLocked() {
	if q.changed != nil {
		close(q.changed)
		q.changed = nil
	}
}
