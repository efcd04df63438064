package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"framepush/wire"
)

// frameRec is one frame seen on the wire between the guest's agent and
// framerecv: what the SIZE line announced and when the receiver's
// GOT IMAGE passed back. Host clock throughout, except Meta.Time (the
// agent's capture time, guest clock synced to the host's).
type frameRec struct {
	Meta   wire.Meta
	Size   int64
	SentAt time.Time // the SIZE line reached the host
	AckAt  time.Time // GOT IMAGE left the receiver
	Err    string    // "ERR ..." answer instead of GOT IMAGE
}

// tap is a transparent TCP relay between the guest and framerecv that
// records every frame's extension metadata (name, id, capture time) and its
// acknowledgement time. framerecv stores frames under the arrival time, so
// the capture-order and latency checks need what only the wire carries.
// Pausing closes the listener and every relayed connection, so the guest
// sees the receiver go away exactly as if it had died.
type tap struct {
	addr    string // where the guest's agent connects (host side)
	backend string // framerecv

	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
	frames map[string][]*frameRec // by client name, in acknowledgement order
	errs   []string               // protocol trouble seen on the wire
	notify chan struct{}          // closed and replaced on every ack
}

func newTap(backend string) (*tap, error) {
	t := &tap{backend: backend, conns: map[net.Conn]struct{}{}, frames: map[string][]*frameRec{}, notify: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	t.addr = ln.Addr().String()
	t.ln = ln
	go t.serve(ln)
	return t, nil
}

// port is the tap's TCP port, which the guest reaches at 10.0.2.2.
func (t *tap) port() int { return t.ln.Addr().(*net.TCPAddr).Port }

// pause refuses new connections and cuts the open ones.
func (t *tap) pause() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ln != nil {
		t.ln.Close()
		t.ln = nil
	}
	for c := range t.conns {
		c.Close()
	}
}

// resume listens again on the same address.
func (t *tap) resume() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", t.addr)
	if err != nil {
		return fmt.Errorf("tap: listen again on %s: %w", t.addr, err)
	}
	t.ln = ln
	go t.serve(ln)
	return nil
}

func (t *tap) close() { t.pause() }

func (t *tap) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go t.relay(c)
	}
}

func (t *tap) track(c net.Conn, on bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if on {
		if t.ln == nil { // paused while this one was being accepted
			return false
		}
		t.conns[c] = struct{}{}
	} else {
		delete(t.conns, c)
	}
	return true
}

func (t *tap) relay(client net.Conn) {
	defer client.Close()
	server, err := net.DialTimeout("tcp", t.backend, 5*time.Second)
	if err != nil {
		return // the guest sees the connection close, as with a dead receiver
	}
	defer server.Close()
	if !t.track(client, true) {
		return
	}
	defer t.track(client, false)
	t.track(server, true)
	defer t.track(server, false)

	s := &wireState{tap: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 32<<10)
		for {
			n, err := server.Read(buf)
			if n > 0 {
				s.answers(buf[:n])
				if _, werr := client.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		client.Close()
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			// Parse before forwarding: the receiver's answer to these bytes
			// must find them already accounted for.
			s.requests(buf[:n])
			if _, werr := server.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	server.Close()
	<-done
}

// wireState follows one relayed connection's lockstep conversation.
type wireState struct {
	tap     *tap
	mu      sync.Mutex
	req     []byte // client bytes not parsed yet
	skip    int64  // payload bytes still to pass
	pending []*frameRec
	ans     []byte // server bytes not parsed yet
	broken  bool
}

func (s *wireState) requests(p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken {
		return
	}
	s.req = append(s.req, p...)
	s.parse(false)
}

// parse consumes whole requests and payloads. settled says the receiver
// has answered GOT SIZE, so an unterminated SIZE line is complete.
func (s *wireState) parse(settled bool) {
	for !s.broken {
		if s.skip > 0 {
			n := min(s.skip, int64(len(s.req)))
			s.req = s.req[n:]
			s.skip -= n
			if s.skip > 0 {
				return
			}
		}
		if len(s.req) == 0 {
			return
		}
		r, n, err := wire.ParseRequest(s.req, settled)
		if errors.Is(err, wire.ErrIncomplete) || errors.Is(err, wire.ErrNeedSettle) {
			return
		}
		if err != nil {
			s.broken = true
			s.tap.problem(fmt.Sprintf("agent sent bytes that are no request: %v", err))
			return
		}
		s.req = s.req[n:]
		settled = false
		if r.Kind == wire.KindSize {
			s.pending = append(s.pending, &frameRec{Meta: r.Meta, Size: r.Size, SentAt: time.Now()})
			s.skip = r.Size
		}
	}
	if len(s.req) == 0 {
		s.req = s.req[:0:0]
	}
}

var (
	gotSize  = []byte(wire.GotSize)
	gotImage = []byte(wire.GotImage)
	// windowAck starts the receiver's pipelining grant, "WINDOW <n>\n".
	windowAck = []byte("WINDOW ")
)

func (s *wireState) answers(p []byte) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ans = append(s.ans, p...)
	for {
		s.ans = bytes.TrimLeft(s.ans, " \t\r\n")
		switch {
		case len(s.ans) == 0:
			return
		case bytes.HasPrefix(s.ans, windowAck):
			// The pipelining grant before GOT SIZE (docs/PROTOCOL.md,
			// "Pipelining"): frames then follow without waiting, their
			// SIZE lines terminated, so parse needs no settling for them.
			_, n, err := wire.ParseWindowAck(s.ans, false)
			if errors.Is(err, wire.ErrIncomplete) {
				return
			}
			if err != nil {
				s.tap.problem(fmt.Sprintf("receiver sent a bad window grant: %v", err))
				s.ans = s.ans[:0]
				return
			}
			s.ans = s.ans[n:]
		case bytes.HasPrefix(s.ans, gotSize):
			s.ans = s.ans[len(gotSize):]
			s.parse(true)
		case bytes.HasPrefix(s.ans, gotImage):
			s.ans = s.ans[len(gotImage):]
			if len(s.pending) == 0 {
				s.tap.problem("GOT IMAGE with no frame pending")
				continue
			}
			f := s.pending[0]
			s.pending = s.pending[1:]
			f.AckAt = now
			s.tap.acked(f)
		case bytes.HasPrefix(s.ans, []byte("ERR ")):
			i := bytes.IndexByte(s.ans, '\n')
			if i < 0 {
				return
			}
			line := string(bytes.TrimSpace(s.ans[:i]))
			s.ans = s.ans[i+1:]
			if len(s.pending) > 0 {
				f := s.pending[0]
				s.pending = s.pending[1:]
				f.Err, f.AckAt = line, now
				s.tap.acked(f)
			}
			s.tap.problem("receiver answered " + line)
		case bytes.HasPrefix(gotSize, s.ans), bytes.HasPrefix(gotImage, s.ans), bytes.HasPrefix([]byte("ERR "), s.ans), bytes.HasPrefix(windowAck, s.ans):
			return // the rest of an answer is still coming
		default:
			s.tap.problem(fmt.Sprintf("receiver sent unexpected bytes %q", s.ans[:min(len(s.ans), 40)]))
			s.ans = s.ans[:0]
			return
		}
	}
}

func (t *tap) problem(msg string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.errs = append(t.errs, time.Now().Format("15:04:05.000")+" "+msg)
}

func (t *tap) acked(f *frameRec) {
	name := f.Meta.Name
	if name == "" {
		name = "(no name)"
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.frames[name] = append(t.frames[name], f)
	close(t.notify)
	t.notify = make(chan struct{})
}

// acks returns a copy of the frames acknowledged for client name, with
// refused ones (Err set) included.
func (t *tap) acks(name string) []frameRec {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]frameRec, 0, len(t.frames[name]))
	for _, f := range t.frames[name] {
		out = append(out, *f)
	}
	return out
}

// problems returns the protocol trouble seen so far.
func (t *tap) problems() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.errs...)
}

// waitFor blocks until cond holds for client name's frames or the timeout
// passes, and returns the frames either way.
func (t *tap) waitFor(name string, timeout time.Duration, cond func([]frameRec) bool) ([]frameRec, bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		t.mu.Lock()
		ch := t.notify
		t.mu.Unlock()
		fs := t.acks(name)
		if cond(fs) {
			return fs, true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return t.acks(name), false
		}
	}
}
