package sender

// The pipelining window (docs/PROTOCOL.md, "Pipelining"). With
// Options.Window on, Submit asks for it on the first SIZE line of each
// connection ("SIZE <n> window=<frames>\n"). A receiver that grants it
// answers "WINDOW <n>\n" before GOT SIZE; from then on frames are written
// back to back, up to the window (frames and bytes) unanswered, and a
// reader goroutine collects GOT SIZE / GOT IMAGE in order. A receiver that
// answers plain GOT SIZE gets the stop-and-wait handshake on that
// connection, and is not asked again for windowRecheck.
//
// Exactness: a frame's outcome is reported (done) exactly once, in
// submission order; nil only after its own GOT IMAGE. When a connection
// breaks, the oldest unanswered frame carries the cause and every frame
// behind it an ErrUnanswered error: none was acknowledged, so the caller
// keeps them all and sends them again, in order (a receiver may already
// hold some of them: duplicates, recognisable by their id).

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"framepush/frame"
	"framepush/wire"
)

// Window configures pipelining. Frames <= 1 turns it off (stop-and-wait).
type Window struct {
	// Frames is the most frames sent but not yet answered on one
	// connection (the receiver may grant fewer).
	Frames int
	// Bytes bounds the payload bytes of those frames (0: DefaultWindowBytes).
	// A single frame larger than Bytes is still sent, alone.
	Bytes int64
}

// Defaults for a window turned on.
const (
	DefaultWindowFrames = 64
	DefaultWindowBytes  = 8 << 20
)

// windowRecheck is how long an address whose receiver ignored the window
// token is spoken to without asking again.
const windowRecheck = 10 * time.Minute

// ErrUnanswered marks a frame that was sent inside a window but got no
// answer because the connection ended at an earlier frame (its refusal,
// a failure, a cancellation). It is not a failure of its own: the caller
// sends it again. IsUnanswered reports it.
var ErrUnanswered = errors.New("no answer: the connection ended at an earlier frame of the window")

// IsUnanswered reports whether err is ErrUnanswered: the frame was not
// refused and need not be counted as a failure; send it again.
func IsUnanswered(err error) bool { return errors.Is(err, ErrUnanswered) }

// errInWindow is Send's internal result for a frame that became the first
// of a granted window: written, its GOT IMAGE still to come.
var errInWindow = errors.New("sender: frame sent in a window")

// Outcome is the result of one submitted frame.
type Outcome struct {
	Tag  any           // as given to Submit
	Err  error         // nil: delivered (GOT IMAGE read)
	Took time.Duration // from Submit to the outcome
}

type flight struct {
	tag     any
	n       int64
	start   time.Time // Submit
	written time.Time // payload written
}

type answer struct {
	want string // wire.GotSize or wire.GotImage
	err  error
}

type windowState struct {
	size     int // frames granted on the open connection; 0: no window
	flight   []flight
	bytes    int64
	progress time.Time // last answer (or grant)
	answers  chan answer
	ready    chan struct{} // signalled after each answer
	quit     chan struct{} // closed to stop the reader
	done     chan struct{} // closed when the reader returned
	ignored  map[string]time.Time
	granted  map[string]int // window last granted per address, for the log
	bufs     [2][]byte
	breaks   int // windows ended with frames unanswered
}

// Windowed reports whether Submit may have several frames in flight: a
// window (Options.Window.Frames > 1, not seed mode) or parallel
// connections (Options.Connections > 1).
func (s *Sender) Windowed() bool { return s.pipelines() || s.o.Connections > 1 }

// pipelines reports whether Submit asks receivers for a window.
func (s *Sender) pipelines() bool { return s.o.Window.Frames > 1 && s.o.Mode != ModeSeed }

// WindowFrames is the configured window in frames (0 or 1: off).
func (s *Sender) WindowFrames() int { return s.o.Window.Frames }

// InFlight is the number of submitted frames whose outcome is not reported
// yet.
func (s *Sender) InFlight() int {
	if s.ln != nil {
		return len(s.win.flight) + s.ln.busy
	}
	return len(s.win.flight)
}

// Ready is signalled when an answer arrived for a frame in flight: call
// Poll. It may fire spuriously.
func (s *Sender) Ready() <-chan struct{} {
	if s.win.ready == nil {
		s.win.ready = make(chan struct{}, 1)
	}
	return s.win.ready
}

// Due is when Poll must be called at the latest to time out the oldest
// frame in flight; zero when none is.
func (s *Sender) Due() time.Time {
	if len(s.win.flight) == 0 {
		if s.ln != nil && s.ln.busy > 0 {
			// Each lane times out its own frame; Ready wakes the caller.
			return time.Now().Add(s.o.AnswerTimeout)
		}
		return time.Time{}
	}
	base := s.win.flight[0].written
	if s.win.progress.After(base) {
		base = s.win.progress
	}
	return base.Add(s.o.AnswerTimeout)
}

// Submit sends f and reports its outcome through done, with tag, exactly
// once: during this call or a later Submit, Poll or Flush, in submission
// order. Without a window (not configured, or not granted by this
// receiver) it is Send followed by done. With one, it returns as soon as f
// is written, waiting first while the window is full. done runs on the
// caller's goroutine. Submit, Poll, Flush, Send and Close must be called
// by one goroutine at a time; call Flush before Close.
func (s *Sender) Submit(ctx context.Context, f frame.Frame, tag any, done func(Outcome)) {
	s.SubmitID(ctx, f, "", tag, done)
}

// SubmitID is Submit with the frame id for the extension's id token (see
// SendID); "" means f.Seq in decimal.
func (s *Sender) SubmitID(ctx context.Context, f frame.Frame, id string, tag any, done func(Outcome)) {
	start := time.Now()
	if s.useLanes() {
		s.pollLanes(ctx, false, done)
		if len(f.Data) == 0 {
			done(Outcome{Tag: tag, Err: s.SendID(ctx, f, id), Took: time.Since(start)})
			return
		}
		s.submitLane(ctx, f, id, tag, start, done)
		return
	}
	breaks := s.win.breaks
	s.Poll(done)
	if s.win.size > 0 {
		n := int64(len(f.Data))
		for s.win.size > 0 && len(s.win.flight) > 0 &&
			(len(s.win.flight) >= s.win.size || s.win.bytes+n > s.o.Window.Bytes) {
			s.await(ctx, done)
		}
		if err := ctx.Err(); err != nil {
			done(Outcome{Tag: tag, Err: &Error{Op: "not sent", Err: errors.Join(ErrUnanswered, err)}, Took: time.Since(start)})
			return
		}
	}
	if s.win.breaks != breaks {
		// Frames sent before f go again: f must not overtake them.
		done(Outcome{Tag: tag, Err: &Error{Op: "not sent", Err: ErrUnanswered}, Took: time.Since(start)})
		return
	}
	if s.win.size > 0 && len(f.Data) > 0 {
		s.writeInWindow(ctx, f, id, tag, start, done)
		return
	}
	s.submitting = true
	err := s.SendID(ctx, f, id)
	s.submitting = false
	if err == errInWindow {
		s.win.flight = append(s.win.flight, flight{tag: tag, n: int64(len(f.Data)), start: start, written: time.Now()})
		s.win.bytes += int64(len(f.Data))
		return
	}
	done(Outcome{Tag: tag, Err: err, Took: time.Since(start)})
}

// Poll reports the outcomes whose answers have arrived, and fails the
// window if its oldest frame is overdue. It does not block.
func (s *Sender) Poll(done func(Outcome)) {
	s.pollLanes(context.Background(), false, done)
	for s.win.size > 0 {
		select {
		case a := <-s.win.answers:
			s.apply(a, done)
			continue
		default:
		}
		if len(s.win.flight) > 0 && !time.Now().Before(s.Due()) {
			s.breakWindow(os.ErrDeadlineExceeded, s.oldestStep(), false, done)
		}
		return
	}
}

// Flush waits until every frame in flight has its outcome, or ctx ends
// (then the rest are reported unanswered and the connection closed).
func (s *Sender) Flush(ctx context.Context, done func(Outcome)) {
	s.pollLanes(ctx, true, done)
	s.Poll(done)
	for len(s.win.flight) > 0 {
		s.await(ctx, done)
	}
}

// await waits for one answer, the oldest frame's deadline, or ctx.
func (s *Sender) await(ctx context.Context, done func(Outcome)) {
	t := time.NewTimer(time.Until(s.Due()))
	defer t.Stop()
	select {
	case a := <-s.win.answers:
		s.apply(a, done)
	case <-t.C:
		s.breakWindow(os.ErrDeadlineExceeded, s.oldestStep(), false, done)
	case <-ctx.Done():
		s.abandon(&Error{Addr: s.o.Addresses[s.addrIdx], Op: "cancelled, frame not delivered", Err: ctx.Err()}, done)
	}
}

// oldestStep is the step an overdue frame in flight is at: its payload
// is written, so the answer missing is (at the latest) its GOT IMAGE.
func (s *Sender) oldestStep() int { return stepGotImage }

// windowToAsk is the window the next SIZE line asks for: only from
// Submit, on a connection's first frame, when the address did not ignore
// the token lately.
func (s *Sender) windowToAsk(addr string, frames int) int {
	if !s.submitting || !s.pipelines() || frames > 0 || s.modeFor(addr) == ModeSeed {
		return 0
	}
	if at, ok := s.win.ignored[addr]; ok {
		if time.Since(at) < windowRecheck {
			return 0
		}
		delete(s.win.ignored, addr)
	}
	return s.o.Window.Frames
}

// windowIgnored remembers that the receiver at the current address did not
// grant the window (cause nil: it answered plain GOT SIZE).
func (s *Sender) windowIgnored(cause error) {
	addr := s.o.Addresses[s.addrIdx]
	if s.win.ignored == nil {
		s.win.ignored = make(map[string]time.Time)
	}
	if _, ok := s.win.ignored[addr]; !ok {
		if cause == nil {
			s.log.Info("receiver does not pipeline; stop-and-wait with it", "addr", addr)
		} else {
			s.log.Info("receiver refused the window token; asking without it", "addr", addr, "error", cause)
		}
	}
	s.win.ignored[addr] = time.Now()
}

// tokenRefused reports whether err, on a SIZE line that asked for a
// window, may be the receiver choking on the token: refused as a bad
// size, bad meta or protocol error, an answer that is no answer, or the
// connection closed before GOT SIZE. It then remembers the address as
// not pipelining, so the retry goes without the token.
func (s *Sender) tokenRefused(err error) bool {
	var se *stepErr
	if !errors.As(err, &se) || se.step > stepGotSize {
		return false
	}
	var rej *wire.RejectError
	var pe *wire.ProtocolError
	switch {
	case errors.As(err, &rej):
		if rej.Reason != wire.ReasonBadSize && rej.Reason != wire.ReasonBadMeta && rej.Reason != wire.ReasonProtocol {
			return false
		}
	case errors.As(err, &pe), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		// A receiver that hangs up on the token, or a network fault at
		// that moment: nothing was accepted either way, and a strict
		// receiver must not pay failures for a token it never asked
		// for, so the frame goes again at once without it (a fault
		// costs the window for windowRecheck).
	default:
		return false
	}
	s.windowIgnored(err)
	return true
}

// startWindow is called by the handshake of a SIZE line whose window was
// granted: it writes the payload and starts the reader, which expects the
// frame's GOT IMAGE first.
func (s *Sender) startWindow(f *frame.Frame, granted int) error {
	n := int64(len(f.Data))
	_ = s.conn.SetWriteDeadline(time.Now().Add(s.o.dataTimeout(n)))
	if _, err := s.conn.Write(f.Data); err != nil {
		return s.stepError(stepData, n, err)
	}
	w := &s.win
	w.size = min(granted, s.o.Window.Frames)
	w.progress = time.Now()
	w.answers = make(chan answer, 2*w.size+2)
	w.quit = make(chan struct{})
	w.done = make(chan struct{})
	s.Ready()
	addr := s.o.Addresses[s.addrIdx]
	if w.granted == nil {
		w.granted = make(map[string]int)
	}
	if w.granted[addr] != w.size {
		// Once per address and window: the receiver pipelines.
		w.granted[addr] = w.size
		s.log.Info("receiver pipelines", "addr", addr, "window", w.size, "window_bytes", s.o.Window.Bytes)
	} else {
		s.log.Debug("pipelining", "addr", addr, "window", w.size, "window_bytes", s.o.Window.Bytes)
	}
	s.update(func(st *Stats) { st.Window = w.size; st.Pipelined++ })
	go s.readAnswers(s.conn, w.answers, w.ready, w.quit, w.done)
	return errInWindow
}

// readAnswers reads GOT IMAGE, GOT SIZE, GOT IMAGE, ... until an error
// (which it hands over last) or quit. It owns s.ar until done is closed;
// deadlines are the Submit goroutine's (it closes the connection).
func (s *Sender) readAnswers(c net.Conn, out chan<- answer, ready chan struct{}, quit, done chan struct{}) {
	defer close(done)
	_ = c.SetReadDeadline(time.Time{})
	want := wire.GotImage
	for {
		err := s.ar.Expect(want)
		select {
		case out <- answer{want: want, err: err}:
		case <-quit:
			return
		}
		select {
		case ready <- struct{}{}:
		default:
		}
		if err != nil {
			return
		}
		if want == wire.GotImage {
			want = wire.GotSize
		} else {
			want = wire.GotImage
		}
	}
}

// writeInWindow writes f's SIZE line and payload in one go.
func (s *Sender) writeInWindow(ctx context.Context, f frame.Frame, id string, tag any, start time.Time, done func(Outcome)) {
	n := int64(len(f.Data))
	s.line = s.sizeLine(s.line[:0], &f, id)
	armed := s.arm(ctx)
	_ = s.conn.SetWriteDeadline(time.Now().Add(s.o.dataTimeout(n)))
	s.win.bufs[0], s.win.bufs[1] = s.line, f.Data
	bufs := net.Buffers(s.win.bufs[:])
	_, err := bufs.WriteTo(s.conn)
	s.win.bufs[0], s.win.bufs[1] = nil, nil
	if armed {
		s.disarm()
	}
	s.win.flight = append(s.win.flight, flight{tag: tag, n: n, start: start, written: time.Now()})
	s.win.bytes += n
	if err == nil {
		return
	}
	if ctx.Err() != nil {
		s.abandon(&Error{Addr: s.o.Addresses[s.addrIdx], Op: "cancelled, frame not delivered", Err: ctx.Err()}, done)
		return
	}
	step := stepData
	if len(s.win.flight) > 1 {
		step = stepGotImage // an earlier frame was not answered before the connection failed
	}
	s.breakWindow(err, step, true, done)
}

// apply books one answer from the reader.
func (s *Sender) apply(a answer, done func(Outcome)) {
	w := &s.win
	if a.err != nil {
		step := stepGotImage
		if a.want == wire.GotSize {
			step = stepGotSize
		}
		s.breakWindow(a.err, step, false, done)
		return
	}
	w.progress = time.Now()
	if len(w.flight) == 0 {
		s.log.Warn("server answered a frame that was not sent; closing the connection", "addr", s.o.Addresses[s.addrIdx], "answer", a.want)
		s.drop()
		return
	}
	if a.want == wire.GotSize {
		return
	}
	f := w.flight[0]
	w.flight = w.flight[1:]
	w.bytes -= f.n
	s.deliveredInWindow(f.n)
	done(Outcome{Tag: f.tag, Took: time.Since(f.start)})
}

// writeFailGrace is how long a failed write waits for the reader's last
// answer: a receiver that refused a frame answered ERR and closed, and the
// write behind it failed; the ERR says why, the write error does not.
const writeFailGrace = 200 * time.Millisecond

// breakWindow ends the window's connection after cause at step (of the
// oldest frame in flight): answers that arrived before it still count;
// the oldest unanswered frame gets the error, the others ErrUnanswered.
// A failed write (fromWriter) first gives the reader writeFailGrace to
// hand over what the receiver said.
func (s *Sender) breakWindow(cause error, step int, fromWriter bool, done func(Outcome)) {
	w := &s.win
	if w.size == 0 {
		return
	}
	var grace <-chan time.Time
	if fromWriter {
		t := time.NewTimer(min(writeFailGrace, s.o.AnswerTimeout))
		defer t.Stop()
		grace = t.C
	}
drain:
	for len(w.flight) > 0 {
		var a answer
		if grace != nil {
			select {
			case a = <-w.answers:
			case <-grace:
				break drain
			}
		} else {
			select {
			case a = <-w.answers:
			default:
				break drain
			}
		}
		if a.err != nil {
			var rej *wire.RejectError
			if errors.As(a.err, &rej) || !errors.Is(cause, os.ErrDeadlineExceeded) {
				cause = a.err // the receiver's words say more than our write's failure
				if a.want == wire.GotSize {
					step = stepGotSize
				} else {
					step = stepGotImage
				}
			}
			break
		}
		if a.want == wire.GotImage {
			f := w.flight[0]
			w.flight = w.flight[1:]
			w.bytes -= f.n
			s.deliveredInWindow(f.n)
			done(Outcome{Tag: f.tag, Took: time.Since(f.start)})
		}
	}
	addr, idx, frames := s.o.Addresses[s.addrIdx], s.addrIdx, s.connFrames
	fl := w.flight
	if len(fl) > 0 {
		w.breaks++
	}
	w.flight, w.bytes = nil, 0
	s.drop()
	if len(fl) == 0 {
		if !errors.Is(cause, io.EOF) && !errors.Is(cause, io.ErrUnexpectedEOF) {
			s.log.Debug("pipelined connection ended between frames", "addr", addr, "error", cause)
		}
		return // the next connection is a reconnect, as without the window
	}
	n := fl[0].n
	err := s.stepError(step, n, cause)
	switch {
	case frames > 0 && step == stepGotSize && isClosedBeforeSize(err):
		// The server closed the connection before accepting the oldest
		// frame (an idle timeout, a restart): nothing was accepted and
		// nothing failed; all go again at once.
		s.log.Info("connection was closed by the server between frames; reconnecting", "addr", addr, "frames", frames, "unanswered", len(fl), "error", cause)
		s.lostConn = true
		err = &Error{Addr: addr, Op: "resend", Err: errors.Join(ErrUnanswered, cause)}
	case IsPermanent(err):
		s.update(func(st *Stats) { st.Rejected++ })
	default:
		s.failed(err, idx)
	}
	done(Outcome{Tag: fl[0].tag, Err: err, Took: time.Since(fl[0].start)})
	for _, f := range fl[1:] {
		done(Outcome{Tag: f.tag, Err: &Error{Addr: addr, Op: "unanswered", Err: ErrUnanswered}, Took: time.Since(f.start)})
	}
}

// abandon reports every frame in flight as unanswered with why (a
// cancellation) and closes the connection.
func (s *Sender) abandon(why *Error, done func(Outcome)) {
	fl := s.win.flight
	s.win.flight, s.win.bytes = nil, 0
	if len(fl) > 0 {
		s.win.breaks++
	}
	s.drop()
	for _, f := range fl {
		done(Outcome{Tag: f.tag, Err: &Error{Addr: why.Addr, Op: why.Op, Err: errors.Join(ErrUnanswered, why.Err)}, Took: time.Since(f.start)})
	}
}

// deliveredInWindow books a frame's GOT IMAGE read by the window's reader.
func (s *Sender) deliveredInWindow(n int64) { s.book(n) }

// endWindow stops the reader once the connection is closed, so that s.ar
// is the Send goroutine's again. Frames still in flight are the caller's
// (breakWindow and abandon report them before they close).
func (s *Sender) endWindow() {
	w := &s.win
	if w.size == 0 {
		return
	}
	close(w.quit)
	<-w.done
	w.size, w.answers, w.quit, w.done = 0, nil, nil, nil
	s.update(func(st *Stats) { st.Window = 0 })
}

// lineTerminator ends a SIZE line without extension tokens: as configured,
// but always terminated inside a window (the receiver checks that nothing
// follows the payload of an unterminated line before GOT IMAGE, and a
// window sends exactly that).
func (s *Sender) lineTerminator() wire.Terminator {
	if s.win.size > 0 && s.o.Terminator == wire.TermNone {
		return wire.TermLF
	}
	return s.o.Terminator
}
