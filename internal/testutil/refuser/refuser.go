// Package refuser runs, for tests, a small receiver on loopback that speaks
// the handshake with the wire package's parser and refuses chosen frames
// after their payload, every time, with a retryable answer (what a
// receiver whose storage fails on one particular frame does). The frames
// it accepts are kept in memory; use recvtest for the reference receiver.
package refuser

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"framepush/wire"
)

// Frame is a frame the server answered GOT IMAGE to.
type Frame struct {
	Meta wire.Meta
	Data []byte
}

// Server is a running refusing receiver.
type Server struct {
	Addr string

	mu       sync.Mutex
	refuse   func(wire.Meta, []byte) bool
	accepted []Frame
	refused  int
	l        net.Listener
	conns    map[net.Conn]struct{}
	wg       sync.WaitGroup
}

// Reason is the answer to a refused frame: "ERR internal ...", which
// wire.Permanent says to retry.
const Reason = wire.ReasonInternal

// Start serves until the end of the test; refuse picks the frames to
// refuse after their payload (nil refuses none).
func Start(t testing.TB, refuse func(m wire.Meta, payload []byte) bool) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: l.Addr().String(), refuse: refuse, l: l, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.Close)
	return s
}

// SetRefuse replaces the refusal rule (nil accepts everything).
func (s *Server) SetRefuse(refuse func(wire.Meta, []byte) bool) {
	s.mu.Lock()
	s.refuse = refuse
	s.mu.Unlock()
}

// Accepted returns the frames answered GOT IMAGE, in order.
func (s *Server) Accepted() []Frame {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Frame(nil), s.accepted...)
}

// Refused counts the refusals sent.
func (s *Server) Refused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// Close stops the server and closes its connections.
func (s *Server) Close() {
	s.l.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.l.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(c)
			c.Close()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

func (s *Server) handle(c net.Conn) {
	dec := wire.NewDecoder(c, wire.DefaultSettle)
	for {
		req, err := dec.ReadRequest(time.Now().Add(30 * time.Second))
		if err != nil || req.Kind != wire.KindSize {
			return
		}
		if _, err := io.WriteString(c, wire.GotSize); err != nil {
			return
		}
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		b := make([]byte, req.Size)
		if _, err := io.ReadFull(dec, b); err != nil {
			return
		}
		s.mu.Lock()
		refuse := s.refuse != nil && s.refuse(req.Meta, b)
		if refuse {
			s.refused++
		} else {
			s.accepted = append(s.accepted, Frame{Meta: req.Meta, Data: b})
		}
		s.mu.Unlock()
		answer := wire.GotImage
		if refuse {
			answer = string(wire.AppendError(nil, Reason, "test: this frame cannot be stored"))
		}
		if _, err := io.WriteString(c, answer); err != nil {
			return
		}
	}
}
