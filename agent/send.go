package agent

import (
	"context"
	"time"

	"framepush/frame"
	"framepush/queue"
	"framepush/sender"
)

// This file is the send side of a pipeline: the Transport seam, the
// stop-and-wait send loop and settle, which books every delivery outcome
// (Ack, Nack, dead letter, rejection) for both send loops; the pipelined
// loop is in sendwindow.go.

// Transport delivers frames to a receiver. *sender.Sender is the one in
// use; the seam keeps the agent's send loop independent of the wire.
type Transport interface {
	// SendID makes one delivery attempt of f under the frame id id; nil
	// means the receiver acknowledged the frame. It is called by one
	// goroutine at a time.
	SendID(ctx context.Context, f frame.Frame, id string) error
	// Close ends the session politely (BYE BYE) and releases the link.
	Close(ctx context.Context) error
	// Stats reports the link state for metrics.
	Stats() sender.Stats
}

// sendLoop delivers queued frames in order until ctx ends, or, once drain
// is closed, until the queue is empty or a delivery fails. With a
// pipelining window it is sendWindowed (sendwindow.go).
func (a *Agent) sendLoop(ctx context.Context, p *pipeline) {
	if w, ok := p.tx.(WindowTransport); ok && w.Windowed() {
		a.sendWindowed(ctx, p, w)
		return
	}
	var ls linkState
	for {
		select {
		case <-p.drain:
			if !p.untilEmpty.Load() || a.queue.Stats().Pending == 0 {
				return
			}
		default:
		}
		it, err := a.queue.Next(ctx)
		if err != nil {
			return // ctx ended or the queue closed
		}
		t0 := time.Now()
		p.inSend.Store(t0.UnixNano())
		err = p.tx.SendID(ctx, it.Frame, it.ID)
		p.inSend.Store(0)
		if a.settle(ctx, p, &ls, it, t0, err) {
			return
		}
	}
}

// linkState is what the send loop remembers across outcomes for its logs.
type linkState struct {
	failures  int
	downSince time.Time
	lastErr   string
}

// settle books the outcome of one delivery attempt of it, begun at t0:
// Ack when delivered or refused permanently, Nack otherwise. It reports
// true when the send loop must end (ctx ended, or stopping after a
// failure).
func (a *Agent) settle(ctx context.Context, p *pipeline, ls *linkState, it queue.Item, t0 time.Time, err error) (stop bool) {
	f := it.Frame
	answer, refused := sender.RefusedAfterPayload(err)
	switch {
	case err == nil:
		a.queue.Ack(it)
		a.queue.SetLinkUp(true)
		a.linkUp.Store(true)
		a.metrics.sent.Inc()
		a.metrics.sentBytes.Add(len(f.Data))
		a.metrics.sendSeconds.UpdateDuration(t0)
		a.lastDelivery.Store(time.Now().UnixNano())
		a.refusedInARow.Store(0)
		if ls.failures > 0 {
			a.log.Info("delivering again", "after_failed_attempts", ls.failures, "down_for", time.Since(ls.downSince).Round(time.Millisecond), "queued", a.queue.Stats().Pending)
			ls.failures, ls.lastErr = 0, ""
		}
		a.log.Debug("frame delivered", "seq", f.Seq, "bytes", len(f.Data), "trigger", f.Trigger, "took", time.Since(t0).Round(time.Microsecond))
	case sender.IsPermanent(err):
		// Retrying could never succeed: drop it, loudly.
		a.queue.Ack(it)
		a.metrics.rejected.Inc()
		a.refusal(err)
		a.refusals.log(a.log, "receiver refused the frame permanently; dropped (counted as rejected)",
			"id", it.ID, "bytes", len(f.Data), "captured", f.Time, "err", err)
	case refused && ctx.Err() == nil:
		// The receiver is there and had the whole frame, but refused
		// this one: retried up to queue.max_attempts times, then moved
		// aside so that the frames behind it flow.
		a.metrics.failures.Inc()
		a.refusal(err)
		a.linkUp.Store(true) // it answered: reachable, no reason to spool
		dead, qerr := a.queue.Refused(it, answer)
		switch {
		case qerr != nil:
			a.log.Error("settling a refused frame", "id", it.ID, "err", qerr)
		case dead:
			a.metrics.deadLettered.Inc()
		default:
			a.refusals.log(a.log, "receiver refused the frame after its payload; it is retried",
				"id", it.ID, "bytes", len(f.Data), "answer", answer)
		}
	case sender.IsUnanswered(err):
		// Sent in a window behind a frame whose failure is booked on its
		// own: not refused, not a failure; it goes again, in order.
		a.queue.Nack(it)
		return ctx.Err() != nil
	default:
		a.queue.Nack(it)
		a.metrics.failures.Inc()
		if ctx.Err() != nil {
			return true
		}
		a.queue.SetLinkUp(false)
		a.linkUp.Store(false)
		if ls.failures == 0 {
			ls.downSince = t0
			st := a.queue.Stats()
			a.log.Warn("cannot deliver frames; they stay queued and are retried with backoff", "err", err, "queued", st.Pending, "spooled", st.SpoolFrames)
		} else if msg := err.Error(); msg != ls.lastErr {
			a.log.Info("still cannot deliver", "err", err, "failed_attempts", ls.failures+1, "down_for", time.Since(ls.downSince).Round(time.Second))
		} else {
			a.log.Debug("delivery attempt failed", "err", err, "failed_attempts", ls.failures+1)
		}
		ls.failures++
		ls.lastErr = err.Error()
		select {
		case <-p.drain:
			return true // stopping: the rest is spooled
		default:
		}
	}
	return false
}
