package receiver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"

	"framepush/wire"
)

var (
	answerGotSize  = []byte(wire.GotSize)
	answerGotImage = []byte(wire.GotImage)
)

// conn is one client connection.
type conn struct {
	s      *Server
	nc     net.Conn // the accepted connection; closing it stops everything
	rw     net.Conn // nc, or the TLS connection over it
	dec    *wire.Decoder
	peer   string
	ip     netip.Addr // the peer's IP, for its share of connections
	folder string     // client folder when the frame carries no name=
	log    *slog.Logger
	keep   []byte // the payload being received, for Stored.Data (Options.KeepData)

	windowed bool // a pipelining window was granted on this connection

	mu      sync.Mutex
	idle    bool // between frames: Shutdown may close it at once
	stopped bool // Shutdown began: finish the frame in flight, then close
}

func newConn(s *Server, nc net.Conn) *conn {
	peer := "unknown"
	if a := nc.RemoteAddr(); a != nil {
		peer = a.String()
	}
	return &conn{
		s:      s,
		nc:     nc,
		peer:   peer,
		folder: peerFolder(nc.RemoteAddr()),
		log:    s.log.With("peer", peer, "conn", s.connSeq.Add(1)),
		idle:   true,
	}
}

// stop is Shutdown's request: an idle connection is closed now, a busy one
// after its frame.
func (c *conn) stop() {
	c.mu.Lock()
	c.stopped = true
	if c.idle {
		c.nc.Close()
	}
	c.mu.Unlock()
}

func (c *conn) isStopped() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopped
}

// setIdle marks the connection idle or busy; it reports false once
// Shutdown began, in which case no new frame may start.
func (c *conn) setIdle(idle bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return false
	}
	c.idle = idle
	return true
}

// failure is how a connection ended when it did not end cleanly.
type failure struct {
	reason string // counted refusal reason; "" counts nothing
	answer bool   // send "ERR <reason> <detail>" (the peer may still listen)
	detail string
	msg    string // what happened, for the log
	bytes  []byte // offending bytes, quoted in the log; nil when none apply
	err    error
}

func (c *conn) serve() {
	s := c.s
	defer s.untrack(c)
	start := time.Now()
	c.rw = c.nc
	if s.opt.TLS != nil {
		tc := tls.Server(c.nc, s.opt.TLS)
		ctx, cancel := context.WithDeadline(context.Background(), start.Add(s.opt.HandshakeTimeout))
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			if !c.isStopped() {
				c.report(&failure{reason: ReasonTLS, msg: "TLS handshake failed", err: err})
			}
			c.nc.Close()
			return
		}
		c.rw = tc
		if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
			c.log = c.log.With("client_cert", certs[0].Subject.String())
		}
	}
	c.dec = wire.NewDecoder(c.rw, s.opt.Settle)
	c.log.Debug("connection opened")

	f := c.loop(start)
	if f == nil {
		c.nc.Close()
		return
	}
	c.report(f)
	if !f.answer {
		c.nc.Close()
		return
	}
	wait := min(time.Second, s.opt.HandshakeTimeout)
	_ = c.rw.SetWriteDeadline(time.Now().Add(wait))
	_, _ = c.rw.Write(wire.AppendError(nil, f.reason, f.detail))
	lingerClose(c.rw, wait)
	c.nc.Close()
}

// report logs f and counts its reason.
func (c *conn) report(f *failure) {
	attrs := make([]any, 0, 8)
	if f.reason != "" {
		c.s.m.reject(f.reason)
		attrs = append(attrs, "reason", f.reason)
	}
	if f.err != nil {
		attrs = append(attrs, "error", f.err.Error())
	}
	if f.bytes != nil {
		attrs = append(attrs, "bytes", wire.Quote(f.bytes))
	}
	if f.answer {
		attrs = append(attrs, "answer", string(wire.AppendError(nil, f.reason, f.detail)))
	}
	c.s.logFailure(c.log, f.reason, f.msg, attrs)
}

// loop serves requests until the connection ends; nil means a clean end.
func (c *conn) loop(start time.Time) *failure {
	o := &c.s.opt
	deadline := start.Add(o.HandshakeTimeout)
	for frames := 0; ; frames++ {
		req, err := c.dec.ReadRequest(deadline)
		if err != nil {
			return c.requestFailure(err, frames)
		}
		if req.Kind == wire.KindBye {
			return c.afterBye()
		}
		if !c.setIdle(false) {
			return nil // shutting down: this frame is not started, the client resends it
		}
		if f := c.receive(req); f != nil {
			return f
		}
		if !c.setIdle(true) {
			return nil
		}
		// Between frames the client may think for IdleTimeout; once it
		// starts a request it has HandshakeTimeout to finish it.
		// Await reads the next request's first bytes into the decoder's
		// buffer (not one byte on its own: one read per request, not two).
		if err := c.dec.Await(time.Now().Add(o.IdleTimeout)); err != nil {
			return c.idleEnd(err, frames+1)
		}
		deadline = time.Now().Add(o.HandshakeTimeout)
	}
}

func (c *conn) requestFailure(err error, frames int) *failure {
	if c.isStopped() {
		return nil
	}
	var pe *wire.ProtocolError
	switch {
	case errors.Is(err, io.EOF):
		c.log.Debug("connection closed by client", "frames", frames)
		return nil
	case errors.As(err, &pe):
		detail := pe.Msg
		if len(pe.Bytes) > 0 {
			detail += ": " + wire.Quote(pe.Bytes)
		}
		return &failure{reason: pe.Reason, answer: true, detail: detail, msg: "bad request: " + pe.Msg, bytes: nonNil(pe.Bytes)}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &failure{reason: ReasonDisconnect, msg: "client closed the connection in the middle of a request", bytes: c.rest()}
	case isTimeout(err):
		within := c.s.opt.HandshakeTimeout
		if frames == 0 {
			return &failure{reason: wire.ReasonTimeout, answer: true,
				detail: "no complete request within " + within.String(),
				msg:    "no complete request within the handshake timeout of a new connection", bytes: c.rest()}
		}
		return &failure{reason: wire.ReasonTimeout, answer: true,
			detail: "request not completed within " + within.String(),
			msg:    "request not completed within the handshake timeout", bytes: c.rest()}
	}
	if c.dec.Buffered() > 0 {
		return &failure{reason: ReasonDisconnect, msg: "connection failed in the middle of a request", bytes: c.rest(), err: err}
	}
	c.log.Debug("connection ended between frames", "frames", frames, "error", err)
	return nil
}

// idleEnd handles the end of a wait between frames.
func (c *conn) idleEnd(err error, frames int) *failure {
	switch {
	case c.isStopped():
	case errors.Is(err, io.EOF):
		c.log.Debug("connection closed by client", "frames", frames)
	case isTimeout(err):
		c.s.m.idleClosed.Inc()
		c.log.Info("closing idle connection", "idle_timeout", c.s.opt.IdleTimeout, "frames", frames)
	default:
		c.log.Debug("connection ended between frames", "frames", frames, "error", err)
	}
	return nil
}

// afterBye checks that nothing follows BYE: bytes already buffered, or
// arriving within the settle window, are a protocol error.
func (c *conn) afterBye() *failure {
	rest := c.rest()
	if len(rest) == 0 {
		var b [64]byte
		_ = c.rw.SetReadDeadline(time.Now().Add(c.s.opt.Settle))
		n, _ := io.ReadAtLeast(c.rw, b[:], 1)
		rest = append(rest, b[:n]...)
	}
	if len(rest) > 0 {
		return &failure{reason: wire.ReasonProtocol, answer: true, detail: "bytes after BYE BYE: " + wire.Quote(rest),
			msg: "bytes after BYE BYE", bytes: rest}
	}
	c.log.Debug("client said goodbye")
	return nil
}

func (c *conn) rest() []byte { return append([]byte{}, c.dec.Rest()...) }

// receive stores one frame whose SIZE request was read, answering
// GOT SIZE and GOT IMAGE; nil means stored and acknowledged.
func (c *conn) receive(req wire.Request) *failure {
	s := c.s
	o := &s.opt
	began := time.Now()
	n := req.Size
	if n > o.MaxFrameSize {
		return &failure{reason: wire.ReasonTooLarge, answer: true, detail: "max=" + strconv.FormatInt(o.MaxFrameSize, 10),
			msg: fmt.Sprintf("frame of %d bytes is over the limit of %d bytes", n, o.MaxFrameSize)}
	}
	client := req.Meta.Name
	if client == "" {
		client = c.folder
	}
	up, err := s.store.Begin(Frame{Size: n, Peer: c.peer, Client: client, Meta: req.Meta, Began: began})
	if err != nil {
		return storeError("cannot create the frame's temporary file", err)
	}
	defer up.Close()

	if o.KeepData > 0 && n <= o.KeepData && s.opt.OnFrame != nil {
		// Payloads held for Stored.Data by frames in flight stay within
		// KeepDataInFlight; a frame over it comes with Data nil. Reserved before
		// GOT SIZE, so a client that has its answer sees the budget taken.
		if s.keeping.Add(n) <= o.KeepDataInFlight {
			c.keep = make([]byte, 0, n)
		}
		defer s.keeping.Add(-n)
		defer func() { c.keep = nil }() // also when the frame fails
	}
	if err := c.answerSize(req); err != nil {
		return &failure{reason: ReasonDisconnect, msg: "cannot send GOT SIZE", err: err}
	}
	ext, f2 := c.copyPayload(up, req, n)
	if f2 != nil {
		return f2
	}
	done, err := up.Commit(ext)
	if err != nil {
		return storeError("cannot store the frame", err)
	}
	final := done.Path
	took := time.Since(began)
	s.m.frames.Inc()
	s.m.bytes.AddInt64(n)
	s.m.frameTime.Update(took.Seconds())
	if s.opt.OnFrame != nil {
		s.opt.OnFrame(Stored{Path: final, Size: n, Peer: c.peer, Client: client, Meta: req.Meta, Duration: took, Duplicate: done.Duplicate, Stamp: began.Add(took), Data: c.keep})
	}
	c.log.Debug("frame stored", "path", final, "bytes", n, "duration", took, "duplicate", done.Duplicate)
	if err := c.answer(answerGotImage); err != nil {
		return &failure{reason: ReasonDisconnect, msg: "frame stored, but GOT IMAGE could not be sent", err: err}
	}
	return nil
}

// copyPayload streams the n payload bytes into the store through a pooled buffer,
// checking the announced checksum and the minimum rate. It returns the
// file extension the first bytes call for.
func (c *conn) copyPayload(f io.Writer, req wire.Request, n int64) (string, *failure) {
	o := &c.s.opt
	bp := c.s.bufs.Get().(*[]byte)
	defer c.s.bufs.Put(bp)
	buf := *bp
	v := wire.NewVerifier(&req.Meta)
	var head [8]byte
	headN := 0
	grace := o.rateGrace()
	var got, nextDeadlineAt int64
	eu, eager := f.(EagerUpload)
	eager = eager && eu.Eager()
	for got < n {
		want := int(min(int64(len(buf)), n-got))
		fill := 0
		for fill < want {
			if at := got + int64(fill); at >= nextDeadlineAt {
				size := min(chunkSize, n-at)
				_ = c.rw.SetReadDeadline(time.Now().Add(grace + time.Duration(size)*time.Second/time.Duration(o.MinRate)))
				nextDeadlineAt = at + size
			}
			k, err := c.dec.Read(buf[fill:want])
			fill += k
			if err != nil && fill < want {
				return "", c.payloadFailure(err, got+int64(fill), n)
			}
			if eager && fill > 0 {
				break // pass on what arrived now
			}
		}
		chunk := buf[:fill]
		if headN < len(head) {
			headN += copy(head[headN:], chunk)
		}
		_, _ = v.Write(chunk)
		if c.keep != nil {
			c.keep = append(c.keep, chunk...)
		}
		if _, err := f.Write(chunk); err != nil {
			return "", storeError("cannot write the frame", err)
		}
		got += int64(fill)
	}
	if !req.Terminated {
		if early := c.bytesPastPayload(); early != nil {
			return "", &failure{reason: wire.ReasonProtocol, answer: true,
				detail: fmt.Sprintf("bytes after the payload before GOT IMAGE (%s): the unterminated SIZE %d was cut by the settle window, or the client did not wait for GOT IMAGE; end the SIZE line with \\n", wire.Quote(early[:min(len(early), 8)]), n),
				msg:    "unterminated SIZE line cut by the settle window: bytes waiting after the payload before GOT IMAGE", bytes: early}
		}
	}
	if err := v.Verify(); err != nil {
		var pe *wire.ProtocolError
		detail := err.Error()
		if errors.As(err, &pe) {
			detail = pe.Msg
		}
		return "", &failure{reason: wire.ReasonChecksum, answer: true, detail: detail, msg: "frame does not match its checksum", err: err}
	}
	return extFor(head[:headN]), nil
}

// cutProbe is how long bytesPastPayload waits for bytes past the payload
// where the socket cannot be asked directly (TLS, whose decrypted bytes
// only tls.Conn sees, or systems without MSG_PEEK|MSG_DONTWAIT): Go reads
// a socket only with a deadline in the future, and data the kernel already
// holds is returned at once, so a client that sends nothing (every correct
// one) pays this much per unterminated frame there.
const cutProbe = time.Millisecond

// bytesPastPayload returns the bytes (at most 16) that are already waiting
// once the payload of an unterminated SIZE has been read, or nil.
//
// A client that follows the handshake sends nothing past the announced
// payload before it has read GOT IMAGE. So if bytes are waiting there, the
// number was cut: "SIZE 12" went quiet for the settle window, "34" came
// later glued to the payload, and the 12 bytes read are the rest of the
// number and the start of the image. The payload's own bytes prove
// nothing (any byte sequence is a frame); only this does. A terminated
// SIZE line is never ambiguous, so its frames are not probed, and
// pipelining after one stays allowed.
func (c *conn) bytesPastPayload() []byte {
	if c.dec.Buffered() > 0 {
		rest := c.dec.Rest()
		return append([]byte(nil), rest[:min(len(rest), 16)]...)
	}
	if c.rw == c.nc {
		if waiting, ok := waitingNow(c.nc); ok && !waiting {
			return nil
		}
	}
	// Bytes are waiting (their read returns at once), or the socket
	// could not be asked.
	_ = c.rw.SetReadDeadline(time.Now().Add(cutProbe))
	b := make([]byte, 16)
	n, _ := c.dec.Read(b)
	if n == 0 {
		// Nothing waiting (timeout), or the client closed after its
		// payload: either way the frame is what was announced.
		return nil
	}
	return b[:n]
}

func (c *conn) payloadFailure(err error, got, n int64) *failure {
	if c.isStopped() {
		return &failure{msg: fmt.Sprintf("frame abandoned at shutdown after %d of %d bytes", got, n), err: err}
	}
	if isTimeout(err) {
		return &failure{reason: wire.ReasonTimeout, answer: true,
			detail: fmt.Sprintf("payload slower than %d B/s: %d of %d bytes", c.s.opt.MinRate, got, n),
			msg:    fmt.Sprintf("payload slower than the minimum rate of %d B/s after %d of %d bytes", c.s.opt.MinRate, got, n)}
	}
	return &failure{reason: ReasonDisconnect, msg: fmt.Sprintf("client went away mid-frame after %d of %d bytes", got, n), err: err}
}

// storeFailure is a local storage problem: "disk-full" when the file
// system is full, "internal" otherwise. The client may resend.
func storeFailure(what string, err error) *failure {
	reason := wire.ReasonInternal
	if isNoSpace(err) {
		reason = wire.ReasonDiskFull
	}
	return &failure{reason: reason, answer: true, detail: what, msg: what, err: err}
}

// answer writes one of the fixed answers.
func (c *conn) answer(b []byte) error {
	_ = c.rw.SetWriteDeadline(time.Now().Add(c.s.opt.HandshakeTimeout))
	_, err := c.rw.Write(b)
	return err
}

func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
