package capture

import "sync/atomic"

// Pending is the one-slot mailbox between a goroutine that produces events
// and the one that serves them. Its rule is the only merge rule for events
// that come faster than they are served: the newest wins. Put never blocks;
// an event still waiting when a newer one arrives is replaced and counted.
// The newest is kept because its time is the one a capture can still
// honour: an older edge (a bounce, the release of a "both" line, an edge of
// an active period that has since ended) must not shadow a fresh one, and
// Looper.Run drops events dated inside the last active period.
//
// The path of a GPIO edge, from the pin to the queue, and where it can be
// merged:
//
//  1. The kernel queues the edge on the line's character device.
//  2. gpio.Trigger.watch, the trigger's own goroutine, returns from
//     WaitForEdge, timestamps the edge, applies the debounce lockout and
//     Puts an Event{Kind: frame.GPIO} into the trigger's Pending (merged
//     here if nobody has taken the previous one: gpio Stats.Dropped).
//  3. Looper.Run's waiter goroutine, blocked in Trigger.Wait (through
//     Merge's forwarding goroutine when trigger.signal is set), takes it
//     and Puts it into the loop's Pending (merged here while an event is
//     being served: LoopStats.Coalesced).
//  4. Run's goroutine takes it, skips it if it is dated inside the active
//     period just served, else serve emits the pre-trigger ring frames
//     (frame.PreTrigger), captures Event.Frames fresh frames from the
//     Source (Trigger frame.GPIO) and keeps capturing while Event.Active.
//  5. emit, on Run's goroutine, is the agent's callback: it numbers the
//     frame and calls queue.Put, which keeps it in RAM or on the spool
//     until the sender's GOT IMAGE.
//
// Only one goroutine may call Put; any number may receive from C.
type Pending struct {
	ch       chan Event
	replaced atomic.Uint64
}

// NewPending returns an empty Pending.
func NewPending() *Pending { return &Pending{ch: make(chan Event, 1)} }

// Put leaves ev for the consumer, replacing an event still waiting; it
// reports whether it did.
func (p *Pending) Put(ev Event) (replaced bool) {
	select {
	case p.ch <- ev:
		return false
	default:
	}
	select {
	case <-p.ch:
		p.replaced.Add(1)
		replaced = true
	default: // the consumer took it meanwhile
	}
	p.ch <- ev // only this goroutine sends, so there is room
	return replaced
}

// C delivers the waiting event.
func (p *Pending) C() <-chan Event { return p.ch }

// Replaced counts events replaced by a newer one before delivery.
func (p *Pending) Replaced() uint64 { return p.replaced.Load() }
