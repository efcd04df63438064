package agent

import (
	"context"
	"errors"
	"time"

	"framepush/frame"
	"framepush/queue"
	"framepush/sender"
)

// WindowTransport is a Transport that can pipeline (*sender.Sender): up to
// a window of frames sent before their answers come back, with receivers
// that grant it. Outcomes come back through done, once per frame, in
// order, on the calling goroutine.
type WindowTransport interface {
	Transport
	Windowed() bool
	SubmitID(ctx context.Context, f frame.Frame, id string, tag any, done func(sender.Outcome))
	Poll(done func(sender.Outcome))
	Flush(ctx context.Context, done func(sender.Outcome))
	InFlight() int
	Ready() <-chan struct{}
	Due() time.Time
}

// sendWindowed is the send loop with a window. Exactness is the same as
// without: a frame leaves the queue (Ack) only on its own GOT IMAGE or a
// permanent refusal; every other outcome puts it back (Nack), and since
// outcomes come in submission order and are all settled before the next
// Next, the frames go again in capture order. Every frame taken from the
// queue is settled before the loop returns.
func (a *Agent) sendWindowed(ctx context.Context, p *pipeline, w WindowTransport) {
	var ls linkState
	stop, requeued := false, false
	done := func(o sender.Outcome) {
		it := o.Tag.(queue.Item)
		if o.Err != nil && !sender.IsPermanent(o.Err) {
			requeued = true
		}
		if a.settle(ctx, p, &ls, it, time.Now().Add(-o.Took), o.Err) {
			stop = true
		}
	}
	flush := func() {
		p.inSend.Store(time.Now().UnixNano())
		w.Flush(ctx, done)
		p.inSend.Store(0)
	}
	defer flush()
	for !stop {
		select {
		case <-p.drain:
			if !p.untilEmpty.Load() {
				return // the frames in flight are answered (flush), the rest stays queued
			}
			flush()
			if stop || a.queue.Stats().Pending == 0 {
				return
			}
		default:
		}
		requeued = false
		it, err := a.nextWindowed(ctx, w, done)
		if err != nil {
			return // ctx ended or the queue closed
		}
		if stop || requeued {
			// Frames older than it went back to the queue while it was
			// taken: it must not overtake them.
			a.queue.Nack(it)
			if stop {
				return
			}
			continue
		}
		p.inSend.Store(time.Now().UnixNano())
		w.SubmitID(ctx, it.Frame, it.ID, it, done)
		p.inSend.Store(0)
	}
}

// nextWindowed is queue.Next that, while frames are in flight, also wakes
// for their answers (and the oldest one's deadline) to settle them.
func (a *Agent) nextWindowed(ctx context.Context, w WindowTransport, done func(sender.Outcome)) (queue.Item, error) {
	for {
		w.Poll(done)
		if w.InFlight() == 0 {
			return a.queue.Next(ctx)
		}
		wctx, cancel := context.WithCancel(ctx)
		timer := time.AfterFunc(time.Until(w.Due()), cancel)
		ready, quit := w.Ready(), make(chan struct{})
		go func() {
			select {
			case <-ready:
				cancel()
			case <-quit:
			}
		}()
		it, err := a.queue.Next(wctx)
		close(quit)
		timer.Stop()
		cancel()
		if err == nil || ctx.Err() != nil || !errors.Is(err, context.Canceled) {
			w.Poll(done) // a wake-up consumed just before Next returned
			return it, err
		}
	}
}
