// Package sender pushes frames to a receiver over the seed handshake
// (package wire):
//
//	client: SIZE <n>     server: GOT SIZE
//	client: <n bytes>    server: GOT IMAGE
//	client: BYE BYE      (when done; the server closes)
//
// A frame is delivered when GOT IMAGE was read, and only then. Every step
// has a deadline (connect, each answer, the payload write derived from a
// minimum throughput), so a silent, stalled or lying server costs a bounded
// time and an error, never a hang. Failed attempts are spaced by capped
// exponential backoff with full jitter and fail over across addresses.
//
// By default the bytes on the wire are exactly the seed client's, so a
// Sender pairs with the original Python server as well as with framerecv.
package sender

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"framepush/frame"
	"framepush/internal/backoff"
	"framepush/wire"
)

// ErrEmptyFrame is returned for a frame without data: the protocol has no
// "SIZE 0", so such a frame can never be delivered. IsPermanent reports
// true for it.
var ErrEmptyFrame = errors.New("sender: empty frame (the protocol cannot carry 0 bytes)")

// Error describes a failed delivery attempt. Err is the cause: a
// *wire.RejectError for an ERR answer, a *wire.ProtocolError for an answer
// that is no answer, a timeout (os.ErrDeadlineExceeded), io.ErrUnexpectedEOF
// when the server closed early, or the context's error.
type Error struct {
	Addr string // server address; empty when no address could be reached
	Op   string // what failed, e.g. "no GOT SIZE within 10s"
	Err  error
}

func (e *Error) Error() string {
	if e.Addr == "" {
		return "sender: " + e.Op + ": " + e.Err.Error()
	}
	return "sender: " + e.Addr + ": " + e.Op + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// IsPermanent reports whether err means the frame will never be accepted
// as it is: the receiver refused it for a permanent reason (bad-size,
// too-large, bad-meta; see wire.Permanent) or it is empty. The caller drops
// such a frame, counted, instead of retrying it forever.
func IsPermanent(err error) bool {
	if errors.Is(err, ErrEmptyFrame) {
		return true
	}
	var rej *wire.RejectError
	return errors.As(err, &rej) && rej.Permanent()
}

// RefusedAfterPayload reports whether err is a refusal of this frame
// itself: the receiver had the whole payload and answered something other
// than GOT IMAGE that is not about its own state, so resending the same
// bytes may well be refused again (ERR checksum, ERR internal, or an answer
// that is no answer). answer is the receiver's words, for logs. It is
// false for connection failures, timeouts and anything before the payload
// was written, for ERR busy, ERR disk-full and ERR timeout (the receiver's
// state, not the frame's), and for permanent refusals (IsPermanent).
// Callers bound the retries of such a frame (the agent's max_attempts)
// so that one poison frame cannot block the frames behind it.
func RefusedAfterPayload(err error) (answer string, ok bool) {
	var se *stepErr
	if !errors.As(err, &se) || se.step != stepGotImage || IsPermanent(err) {
		return "", false
	}
	var rej *wire.RejectError
	if errors.As(err, &rej) {
		switch rej.Reason {
		case wire.ReasonBusy, wire.ReasonDiskFull, wire.ReasonTimeout:
			return "", false
		}
		return rej.Error(), true
	}
	var pe *wire.ProtocolError
	if errors.As(err, &pe) {
		return pe.Error(), true
	}
	return "", false
}

// Stats is a snapshot of a Sender's counters.
type Stats struct {
	Sent       uint64 // frames delivered (GOT IMAGE read)
	Bytes      uint64 // payload bytes delivered
	Failures   uint64 // attempts that failed and will be retried (not counting cancellations)
	Rejected   uint64 // frames refused permanently (IsPermanent)
	Connects   uint64 // connections opened
	Reconnects uint64 // connections opened to replace one that failed
	Connected  bool   // a connection is open now
	Address    string // address of the open (or last) connection
	// Mode is the effective mode: auto reports persistent until it has
	// switched to seed for the current address.
	Mode        Mode
	LastSuccess time.Time     // when the last frame was delivered
	LastError   string        // the last failure, "" after a success
	RetryDelay  time.Duration // backoff the next attempt waits before dialing
	Window      int           // frames the open connection may have unanswered (0: stop-and-wait)
	Pipelined   uint64        // connections on which the receiver granted a window
}

// Sender delivers frames to one of its Options.Addresses.
//
// Send, Deliver and Close must be called by one goroutine at a time (the
// frame pipeline's sending goroutine); a Send in progress is interrupted by
// cancelling its context, not by calling Close. Stats may be called from
// any goroutine at any time.
type Sender struct {
	o   Options
	log *slog.Logger
	bo  *backoff.Backoff

	// Owned by the goroutine calling Send and Close.
	conn       net.Conn // nil when no connection is open
	raw        net.Conn // the TCP connection under conn (same as conn without TLS)
	watch      *watcher
	ar         wire.AnswerReader
	addrIdx    int           // index of the address conn goes to
	next       int           // first address to dial
	connFrames int           // frames delivered on conn
	seedAddr   string        // auto: the address whose server takes one frame per connection
	seedAt     time.Time     // when auto switched to seed for seedAddr
	recheck    time.Duration // auto: how long a switch to seed lasts before persistent is tried again
	owed       time.Duration // backoff to wait before the next dial
	lostConn   bool          // the last connection ended in a failure
	line       []byte        // SIZE line, reused
	askWindow  int           // > 0: this SIZE line asks for a window of that many frames
	submitting bool          // Send runs for Submit, which may take a window
	win        windowState   // the pipelining window (window.go)
	ln         *lanes        // parallel connections (lanes.go)
	idBuf      [20]byte
	meta       wire.Meta

	mu       sync.Mutex
	st       Stats
	laneView []*Sender // s.ln's lanes, for Stats
}

// New checks o and returns a Sender. It does no I/O: the first Send
// connects.
func New(o Options) (*Sender, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Sender{
		o:    o,
		log:  o.Logger,
		bo:   backoff.New(o.Backoff),
		line: make([]byte, 0, wire.MaxLine),

		recheck: autoRecheck,
	}
	s.st.Mode = s.modeFor(o.Addresses[0])
	s.st.Address = o.Addresses[0]
	return s, nil
}

// autoRecheck is how long auto mode keeps one frame per connection for an
// address before it tries a persistent connection again. A receiver that
// restarted or timed out right after a connection's first frame looks
// like the original server; the recheck undoes such a mistaken switch,
// and costs a real seed server one extra connection, no failure.
const autoRecheck = 10 * time.Minute

// Stats returns a snapshot of the counters. It is safe to call
// concurrently with Send.
func (s *Sender) Stats() Stats {
	s.mu.Lock()
	st, lanes := s.st, s.laneView
	s.mu.Unlock()
	addLanes(&st, lanes) // parallel connections (lanes.go)
	return st
}

// modeFor is the effective mode for addr.
func (s *Sender) modeFor(addr string) Mode {
	switch {
	case s.o.Mode == ModeSeed:
		return ModeSeed
	case s.o.Mode == ModeAuto && s.seedAddr == addr:
		return ModeSeed
	}
	return ModePersistent
}

// Send makes one delivery attempt of f. If no connection is open it first
// waits out the backoff owed from earlier failures (zero at start and after
// a success), then dials the addresses in order, starting with the one
// that worked last. It returns nil only once GOT IMAGE was read.
//
// Any error means f was not delivered: the caller keeps it and tries again
// later (delivery is at least once). For a permanent refusal IsPermanent
// reports true and the caller should drop f. A cancelled ctx interrupts
// any step at once and is not counted as a failure.
//
// A connection that already delivered a frame and is found closed when the
// next SIZE goes out (an idle timeout, a restarted server, or the original
// Python server, which takes one frame per connection) is replaced and f
// resent within the same call, without counting a failure: f had not been
// accepted, so nothing is duplicated. In auto mode, a server that closed
// after exactly one frame makes the Sender use one connection per frame
// for that address (a connection that carried several frames proves the
// server persistent); every 10 minutes it tries persistent again.
func (s *Sender) Send(ctx context.Context, f frame.Frame) error {
	return s.SendID(ctx, f, "")
}

// SendID is Send with the frame id for the extension's id token given by
// the caller (the agent's "<run>-<seq>", see queue.Item.ID); "" means
// f.Seq in decimal. id must be a wire.ValidToken.
func (s *Sender) SendID(ctx context.Context, f frame.Frame, id string) error {
	if len(f.Data) == 0 {
		s.update(func(st *Stats) { st.Rejected++ })
		return ErrEmptyFrame
	}
	if err := ctx.Err(); err != nil {
		return &Error{Op: "not sent", Err: err}
	}
	resent := false
	for {
		if s.conn == nil {
			if err := s.waitOwed(ctx); err != nil {
				return err
			}
			if err := s.connect(ctx); err != nil {
				if ctx.Err() != nil {
					return &Error{Op: "connecting", Err: ctx.Err()}
				}
				s.failed(err, -1)
				return err
			}
		}
		addr, idx, frames := s.o.Addresses[s.addrIdx], s.addrIdx, s.connFrames
		s.askWindow = s.windowToAsk(addr, frames)
		err := s.exchange(ctx, &f, id)
		asked := s.askWindow > 0
		s.askWindow = 0
		if err == nil {
			s.delivered(int64(len(f.Data)))
			return nil
		}
		if err == errInWindow {
			return err // Submit books it as the window's first frame
		}
		s.drop()
		if asked && ctx.Err() == nil && s.tokenRefused(err) {
			// A receiver that chokes on the window token: say it again
			// without, at once (nothing was accepted).
			continue
		}
		if ctx.Err() != nil {
			return &Error{Addr: addr, Op: "cancelled, frame not delivered", Err: ctx.Err()}
		}
		if !resent && frames > 0 && isClosedBeforeSize(err) {
			resent = true
			if s.o.Mode == ModeAuto && frames == 1 && s.seedAddr != addr {
				s.seedAddr, s.seedAt = addr, time.Now()
				s.log.Info("server closes the connection after each frame; switching to one frame per connection",
					"addr", addr, "error", err)
				s.update(func(st *Stats) { st.Mode = ModeSeed })
			} else {
				s.log.Info("connection was closed by the server between frames; reconnecting", "addr", addr, "frames", frames, "error", err)
			}
			continue
		}
		if IsPermanent(err) {
			// Debug: the caller reports refusals in its own terms (the
			// agent summarises repeated ones), not twice per frame.
			s.log.Debug("frame refused permanently", "addr", addr, "bytes", len(f.Data), "seq", f.Seq, "error", err)
			s.update(func(st *Stats) { st.Rejected++ })
			return err
		}
		s.failed(err, idx)
		return err
	}
}

// Deliver calls Send until f is delivered, refused permanently, or ctx is
// done; in the last case the error is the last failure, wrapped together
// with ctx's error.
func (s *Sender) Deliver(ctx context.Context, f frame.Frame) error {
	var last error
	for {
		err := s.Send(ctx, f)
		if err == nil || IsPermanent(err) {
			return err
		}
		if ctx.Err() != nil {
			if last != nil && errors.Is(err, ctx.Err()) {
				// The failure says why; the context only when it gave up.
				return fmt.Errorf("%w (gave up: %w)", last, ctx.Err())
			}
			return err
		}
		last = err
	}
}

// Close says "BYE BYE " on the open connection, if any, and closes it,
// which also ends the goroutine that watches the connection. The goodbye
// is bounded by ctx and AnswerTimeout. Close is idempotent, and a later
// Send connects again.
func (s *Sender) Close(ctx context.Context) error {
	if s.ln != nil && s.ln.busy == 0 {
		if err := s.closeLanes(ctx); err != nil {
			return err
		}
	}
	if s.conn == nil {
		return nil
	}
	addr := s.o.Addresses[s.addrIdx]
	armed := s.arm(ctx)
	err := s.bye(ctx)
	if armed {
		s.disarm()
	}
	s.closeConn(false)
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return &Error{Addr: addr, Op: "sending BYE BYE", Err: err}
	}
	s.log.Debug("closed connection", "addr", addr)
	return nil
}

// exchange runs the handshake for f on the open connection, interruptible
// by ctx.
func (s *Sender) exchange(ctx context.Context, f *frame.Frame, id string) error {
	armed := s.arm(ctx)
	err := s.handshake(f, id)
	if armed {
		s.disarm()
	}
	return err
}

// Steps of the handshake, for errors.
const (
	stepSize = iota
	stepGotSize
	stepData
	stepGotImage
)

func (s *Sender) handshake(f *frame.Frame, id string) error {
	c := s.conn
	n := int64(len(f.Data))
	s.line = s.sizeLine(s.line[:0], f, id)
	_ = c.SetWriteDeadline(time.Now().Add(s.o.AnswerTimeout))
	if _, err := c.Write(s.line); err != nil {
		return s.stepError(stepSize, n, err)
	}
	_ = c.SetReadDeadline(time.Now().Add(s.o.AnswerTimeout))
	granted := 0
	if s.askWindow > 0 {
		w, err := s.ar.ExpectWindowAck()
		if err != nil {
			return s.stepError(stepGotSize, n, err)
		}
		granted = w
	}
	if err := s.ar.Expect(wire.GotSize); err != nil {
		return s.stepError(stepGotSize, n, err)
	}
	if s.askWindow > 0 {
		if granted > 0 {
			return s.startWindow(f, granted)
		}
		s.windowIgnored(nil)
	}
	if b := s.ar.Buffered(); len(b) > 0 {
		return s.stepError(stepGotSize, n, &wire.ProtocolError{Reason: wire.ReasonProtocol,
			Msg: "server sent bytes after GOT SIZE before the payload", Bytes: append([]byte(nil), b[:min(len(b), 64)]...)})
	}
	_ = c.SetWriteDeadline(time.Now().Add(s.o.dataTimeout(n)))
	if _, err := c.Write(f.Data); err != nil {
		return s.stepError(stepData, n, err)
	}
	_ = c.SetReadDeadline(time.Now().Add(s.o.AnswerTimeout))
	if err := s.ar.Expect(wire.GotImage); err != nil {
		return s.stepError(stepGotImage, n, err)
	}
	return nil
}

// sizeLine appends the SIZE line for f. With the extension, the id token
// is id, or when id is "" f.Seq in decimal, formatted into a buffer of the
// Sender and viewed as a string only while the line is built, so no frame
// allocates.
func (s *Sender) sizeLine(dst []byte, f *frame.Frame, id string) []byte {
	n := int64(len(f.Data))
	if !s.o.Extension {
		if s.askWindow > 0 {
			return wire.AppendSize(dst, n, &wire.Meta{Window: s.askWindow}, s.o.Terminator)
		}
		return wire.AppendSize(dst, n, nil, s.lineTerminator())
	}
	m := &s.meta
	*m = wire.Meta{Name: s.o.Name, Window: s.askWindow}
	if f.Time.UnixNano() > 0 {
		m.Time = f.Time
	}
	if id != "" {
		m.ID = id
	} else if f.Seq != 0 {
		id := strconv.AppendUint(s.idBuf[:0], f.Seq, 10)
		m.ID = unsafe.String(&id[0], len(id))
	}
	s.o.Checksum.Stamp(m, f.Data)
	term := s.o.Terminator
	if term == wire.TermNone {
		term = wire.TermLF
	}
	dst = wire.AppendSize(dst, n, m, term)
	m.ID = ""
	return dst
}

// stepError describes a failed step in words an operator can act on.
func (s *Sender) stepError(step int, n int64, err error) error {
	addr := s.o.Addresses[s.addrIdx]
	var op string
	timeout := isTimeout(err)
	var rej *wire.RejectError
	var pe *wire.ProtocolError
	switch {
	case errors.As(err, &rej):
		op = "refused"
		if step == stepGotImage {
			op = "refused after the payload"
		}
	case errors.As(err, &pe):
		op = "bad answer"
	case step == stepSize && timeout:
		op = fmt.Sprintf("SIZE not written within %v", s.o.AnswerTimeout)
	case step == stepSize:
		op = "sending SIZE"
	case step == stepGotSize && timeout:
		op = fmt.Sprintf("no GOT SIZE within %v", s.o.AnswerTimeout)
	case step == stepGotSize && errors.Is(err, io.ErrUnexpectedEOF):
		op = "server closed the connection instead of answering GOT SIZE"
	case step == stepGotSize:
		op = "waiting for GOT SIZE"
	case step == stepData && timeout:
		op = fmt.Sprintf("payload of %d bytes not written within %v (the server stopped reading; min throughput %d B/s)",
			n, s.o.dataTimeout(n), s.o.MinThroughput)
	case step == stepData:
		op = fmt.Sprintf("sending the payload of %d bytes", n)
	case timeout:
		op = fmt.Sprintf("no GOT IMAGE within %v", s.o.AnswerTimeout)
	case errors.Is(err, io.ErrUnexpectedEOF):
		op = "server closed the connection instead of answering GOT IMAGE"
	default:
		op = "waiting for GOT IMAGE"
	}
	return &Error{Addr: addr, Op: op, Err: &stepErr{step: step, err: err}}
}

// stepErr keeps the step for isClosedBeforeSize without showing in
// messages.
type stepErr struct {
	step int
	err  error
}

func (e *stepErr) Error() string { return e.err.Error() }
func (e *stepErr) Unwrap() error { return e.err }

// isClosedBeforeSize reports whether err means the server had closed the
// connection before this frame's SIZE was accepted: EOF, a reset or a
// broken pipe while sending SIZE or waiting for GOT SIZE.
func isClosedBeforeSize(err error) bool {
	var se *stepErr
	if !errors.As(err, &se) || se.step > stepGotSize {
		return false
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// book counts a frame whose GOT IMAGE was read: the backoff and the
// failure budget start over, the stats record the success.
func (s *Sender) book(n int64) {
	s.connFrames++
	s.bo.Reset()
	s.owed = 0
	now := time.Now()
	s.mu.Lock()
	s.st.Sent++
	s.st.Bytes += uint64(n)
	s.st.LastSuccess = now
	s.st.LastError = ""
	s.st.RetryDelay = 0
	s.mu.Unlock()
}

// delivered books a delivered frame and, in seed mode (or after a server
// talked out of turn), ends the connection.
func (s *Sender) delivered(n int64) {
	s.book(n)
	addr := s.o.Addresses[s.addrIdx]
	if b := s.ar.Buffered(); len(b) > 0 {
		s.log.Warn("server sent bytes after GOT IMAGE; closing the connection", "addr", addr, "bytes", wire.Quote(b))
		s.drop()
		return
	}
	if s.modeFor(addr) == ModeSeed {
		// Like the seed client: goodbye, then close. The original server
		// has usually closed already, so errors do not matter here.
		_ = s.bye(context.Background())
		s.closeConn(false)
	}
}

// failed books a failed attempt on the address at index idx (-1: none
// could be reached) and sets the backoff owed before the next dial.
func (s *Sender) failed(err error, idx int) {
	s.owed = s.bo.Next()
	if idx >= 0 && len(s.o.Addresses) > 1 {
		s.next = (idx + 1) % len(s.o.Addresses)
	}
	// Debug: the caller (the agent's send loop, framepush send) reports
	// outages in its own terms, once, not once per attempt.
	s.log.Debug("send failed", "error", err, "retry_in", s.owed, "failures", s.bo.Attempts())
	msg := err.Error()
	s.mu.Lock()
	s.st.Failures++
	s.st.LastError = msg
	s.st.RetryDelay = s.owed
	s.mu.Unlock()
}

func (s *Sender) update(fn func(*Stats)) {
	s.mu.Lock()
	fn(&s.st)
	s.mu.Unlock()
}

// waitOwed sleeps the backoff owed from earlier failures, or until ctx is
// done.
func (s *Sender) waitOwed(ctx context.Context) error {
	if s.owed <= 0 {
		return nil
	}
	t := time.NewTimer(s.owed)
	defer t.Stop()
	select {
	case <-t.C:
		s.owed = 0
		return nil
	case <-ctx.Done():
		return &Error{Op: "waiting to reconnect", Err: ctx.Err()}
	}
}

// connect dials the addresses in order, starting with s.next.
func (s *Sender) connect(ctx context.Context) error {
	var errs []error
	for k := range len(s.o.Addresses) {
		i := (s.next + k) % len(s.o.Addresses)
		addr := s.o.Addresses[i]
		if s.o.Mode == ModeAuto && s.seedAddr == addr && time.Since(s.seedAt) >= s.recheck {
			s.log.Debug("trying a persistent connection again", "addr", addr)
			s.seedAddr = ""
		}
		c, raw, err := s.dial(ctx, addr)
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			s.log.Debug("cannot connect", "addr", addr, "error", err)
			errs = append(errs, err)
			continue
		}
		s.conn, s.raw, s.addrIdx, s.next, s.connFrames = c, raw, i, i, 0
		s.ar.Reset(c)
		s.watch = newWatcher(raw)
		mode := s.modeFor(addr)
		reconnect := s.lostConn
		s.lostConn = false
		s.mu.Lock()
		s.st.Connects++
		if reconnect {
			s.st.Reconnects++
		}
		s.st.Connected, s.st.Address, s.st.Mode = true, addr, mode
		s.mu.Unlock()
		if mode == ModeSeed {
			s.log.Debug("connected", "addr", addr, "mode", mode, "tls", s.o.TLS != nil)
		} else {
			s.log.Info("connected", "addr", addr, "mode", mode, "tls", s.o.TLS != nil)
		}
		return nil
	}
	return &Error{Op: "cannot connect to any server", Err: errors.Join(errs...)}
}

// dial opens a connection to addr, TLS included, within ConnectTimeout.
func (s *Sender) dial(ctx context.Context, addr string) (conn, raw net.Conn, err error) {
	dctx, cancel := context.WithTimeout(ctx, s.o.ConnectTimeout)
	defer cancel()
	raw, err = s.o.Dial(dctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	if s.o.TLS == nil {
		return raw, raw, nil
	}
	cfg := s.o.TLS
	if cfg.ServerName == "" {
		cfg = cfg.Clone()
		cfg.ServerName, _, _ = net.SplitHostPort(addr)
	}
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(dctx); err != nil {
		raw.Close()
		return nil, nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
	}
	return tc, raw, nil
}

// bye writes "BYE BYE " within AnswerTimeout (or ctx's deadline).
func (s *Sender) bye(ctx context.Context) error {
	deadline := time.Now().Add(s.o.AnswerTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = s.conn.SetWriteDeadline(deadline)
	_, err := io.WriteString(s.conn, wire.Bye)
	return err
}

// drop closes the connection after a failure.
func (s *Sender) drop() { s.closeConn(true) }

// closeConn closes the open connection; lost says it ended in a failure.
func (s *Sender) closeConn(lost bool) {
	if s.conn == nil {
		return
	}
	s.watch.quit()
	s.watch = nil
	_ = s.conn.Close()
	if s.raw != s.conn {
		_ = s.raw.Close()
	}
	s.conn, s.raw = nil, nil
	s.endWindow() // after the close, which ends the window's reader
	s.ar.Reset(nil)
	s.lostConn = lost
	s.update(func(st *Stats) { st.Connected = false })
}

// arm makes a cancellation of ctx interrupt I/O on the open connection
// until disarm. Returns false (and nothing needs disarming) when ctx can
// never be cancelled.
func (s *Sender) arm(ctx context.Context) bool {
	if ctx.Done() == nil {
		return false
	}
	s.watch.start <- ctx
	return true
}

func (s *Sender) disarm() { s.watch.stop <- struct{}{} }

// watcher interrupts a connection's I/O when a Send's context is
// cancelled. It is one goroutine per connection, handed each Send's
// context over a channel, because a per-call context.AfterFunc would
// allocate on every frame. It closes the raw TCP connection rather than
// setting a deadline: the Send goroutine sets deadlines itself and could
// overwrite one, while a closed connection stays closed. Closing the TLS
// layer instead could block on a write in progress.
type watcher struct {
	c     net.Conn
	start chan context.Context
	stop  chan struct{}
	done  chan struct{}
}

func newWatcher(c net.Conn) *watcher {
	w := &watcher{c: c, start: make(chan context.Context), stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

func (w *watcher) run() {
	for {
		select {
		case ctx := <-w.start:
			select {
			case <-ctx.Done():
				_ = w.c.Close()
				<-w.stop
			case <-w.stop:
			}
		case <-w.done:
			return
		}
	}
}

// quit ends the goroutine; it must not be armed.
func (w *watcher) quit() { close(w.done) }
