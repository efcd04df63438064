package sender

// Parallel connections (Options.Connections) for receivers that serve
// several clients at once but do not grant the window: up to N frames are
// in flight, each on its own connection, each stop-and-wait, so round
// trips overlap. Every frame still leaves the caller's queue only on its
// own GOT IMAGE (each lane is a plain Sender); but frames on different
// connections overtake each other, so the order in which such a receiver
// stores them is not guaranteed. With a receiver that grants the window,
// the window is used instead (one connection, order kept).

import (
	"context"
	"errors"
	"time"

	"framepush/frame"
)

type laneResult struct {
	lane  *Sender
	tag   any
	err   error
	start time.Time
}

type lanes struct {
	idle    []*Sender
	all     []*Sender
	busy    int
	results chan laneResult
	since   time.Time // when lane mode began (rechecked after windowRecheck)
}

// useLanes reports whether Submit should spread frames over parallel
// connections: configured, and no window on the current connection
// because the receiver does not grant one (or it is off).
func (s *Sender) useLanes() bool {
	if s.o.Connections <= 1 || s.win.size > 0 {
		return false
	}
	if s.ln != nil {
		if s.ln.busy == 0 && s.pipelines() && time.Since(s.ln.since) >= windowRecheck {
			s.closeLanes(context.Background()) // ask for the window again
			return false
		}
		return true
	}
	if !s.pipelines() {
		return true
	}
	_, ignored := s.win.ignored[s.o.Addresses[s.next]]
	return ignored
}

// submitLane sends f on an idle lane, waiting for one while all are busy.
func (s *Sender) submitLane(ctx context.Context, f frame.Frame, id string, tag any, start time.Time, done func(Outcome)) {
	if s.ln == nil {
		if s.conn != nil {
			_ = s.Close(ctx) // the lanes take over from the main connection
		}
		n := s.o.Connections
		s.ln = &lanes{results: make(chan laneResult, n), since: time.Now()}
		for range n {
			o := s.o
			o.Connections, o.Window = 0, Window{}
			l, err := New(o)
			if err != nil {
				done(Outcome{Tag: tag, Err: err, Took: time.Since(start)})
				return
			}
			s.ln.all = append(s.ln.all, l)
			s.ln.idle = append(s.ln.idle, l)
		}
		s.mu.Lock()
		s.laneView = s.ln.all
		s.mu.Unlock()
		s.Ready()
		s.log.Info("spreading frames over parallel connections (the receiver does not pipeline; order at the receiver is not guaranteed)",
			"connections", n)
	}
	for len(s.ln.idle) == 0 {
		select {
		case r := <-s.ln.results:
			s.laneDone(r, done)
		case <-ctx.Done():
			done(Outcome{Tag: tag, Err: &Error{Op: "not sent", Err: errors.Join(ErrUnanswered, ctx.Err())}, Took: time.Since(start)})
			return
		}
	}
	l := s.ln.idle[len(s.ln.idle)-1]
	s.ln.idle = s.ln.idle[:len(s.ln.idle)-1]
	s.ln.busy++
	results, ready := s.ln.results, s.win.ready
	go func() {
		err := l.SendID(ctx, f, id)
		results <- laneResult{lane: l, tag: tag, err: err, start: start}
		select {
		case ready <- struct{}{}:
		default:
		}
	}()
}

func (s *Sender) laneDone(r laneResult, done func(Outcome)) {
	s.ln.busy--
	s.ln.idle = append(s.ln.idle, r.lane)
	done(Outcome{Tag: r.tag, Err: r.err, Took: time.Since(r.start)})
}

// pollLanes reports finished lanes without blocking; wait blocks for one
// while any is busy (or ctx ends).
func (s *Sender) pollLanes(ctx context.Context, wait bool, done func(Outcome)) {
	for s.ln != nil && s.ln.busy > 0 {
		if wait {
			select {
			case r := <-s.ln.results:
				s.laneDone(r, done)
			case <-ctx.Done():
				// The lanes' Sends end with ctx too; collect them.
				r := <-s.ln.results
				s.laneDone(r, done)
			}
			continue
		}
		select {
		case r := <-s.ln.results:
			s.laneDone(r, done)
		default:
			return
		}
	}
}

// closeLanes says goodbye on every lane; none may be busy. Their counters
// are folded into the Sender's, so totals never go backwards.
func (s *Sender) closeLanes(ctx context.Context) error {
	if s.ln == nil {
		return nil
	}
	var errs []error
	for _, l := range s.ln.all {
		if err := l.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	var sum Stats
	addLanes(&sum, s.ln.all)
	s.mu.Lock()
	s.st.Sent += sum.Sent
	s.st.Bytes += sum.Bytes
	s.st.Failures += sum.Failures
	s.st.Rejected += sum.Rejected
	s.st.Connects += sum.Connects
	s.st.Reconnects += sum.Reconnects
	s.laneView = nil
	s.mu.Unlock()
	s.ln = nil
	return errors.Join(errs...)
}

// addLanes adds the lanes' counters to st.
func addLanes(st *Stats, all []*Sender) {
	for _, l := range all {
		ls := l.Stats()
		st.Sent += ls.Sent
		st.Bytes += ls.Bytes
		st.Failures += ls.Failures
		st.Rejected += ls.Rejected
		st.Connects += ls.Connects
		st.Reconnects += ls.Reconnects
		st.Connected = st.Connected || ls.Connected
		if ls.LastSuccess.After(st.LastSuccess) {
			st.LastSuccess = ls.LastSuccess
		}
		if ls.LastError != "" {
			st.LastError = ls.LastError
		}
	}
}
