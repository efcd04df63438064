// Package receiver is the reference framepush receiver: it accepts frames
// over the SIZE / GOT SIZE / <bytes> / GOT IMAGE handshake (package wire)
// from any number of clients, persistent or one frame per connection, and
// stores each frame durably before acknowledging it.
//
// A frame is written to a ".part-*" file in its target folder, checked
// against the checksum the client announced (if any), fsynced, renamed to
// its final name and the folder fsynced; only then is GOT IMAGE sent. So a
// final name never holds a partial frame, whatever happens to the client or
// to the receiver, and temporary files left by a crash are removed by New.
//
// Where frames are kept is a Store (storage.go): the folder Options.Dir by
// default, or any Store in Options.Store (framerecv's S3 store lives in
// framepush/store/s3, so that only framerecv links its client).
//
// Frames land in Dir/<client>/<YYYY-MM-DD>/<stamp>-<seq>.<ext>, where
// client is the extension's name= or the peer's IP, stamp (and the day
// folder) the UTC capture time with nanoseconds when the frame carries the
// extension's ts= (also set as the file's mtime), else its arrival time, seq
// a per-process sequence number, and ext jpg, png or bin from the payload's
// magic bytes. A frame never replaces an existing file.
package receiver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"framepush/wire"
)

// ErrServerClosed is returned by Serve and ListenAndServe after Shutdown.
var ErrServerClosed = errors.New("receiver: server closed")

// copyBufSize is the pooled buffer payload bytes pass through on their way
// to the file; chunkSize is the unit the MinRate deadline is set for.
const (
	copyBufSize = 128 << 10
	chunkSize   = 64 << 10
)

// maxLingering bounds the goroutines that refuse busy connections
// politely; past it they are closed at once.
const maxLingering = 32

// Server receives frames. Create it with New; it is safe for concurrent use.
type Server struct {
	opt   Options
	log   *slog.Logger
	m     *serverMetrics
	store Store
	dir   *dirStore // the folder store, nil when Options.Store is set
	bufs  sync.Pool

	active   atomic.Int64 // open connections
	keeping  atomic.Int64 // payload bytes held for Stored.Data by frames in flight (Options.KeepDataInFlight)
	connSeq  atomic.Uint64
	linger   chan struct{} // slots for busy refusals
	busyLog  logLimiter
	peerLog  logLimiter
	failLogs failLogs

	peerMu sync.Mutex
	peers  map[netip.Addr]int // open connections per remote IP

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closing   bool
	done      chan struct{} // closed by Shutdown
	wg        sync.WaitGroup
}

// New checks opt, creates opt.Dir if needed and removes the temporary files
// a crash left in it (each logged and counted).
func New(opt Options) (*Server, error) {
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{
		opt:       opt,
		log:       opt.Logger,
		store:     opt.Store,
		linger:    make(chan struct{}, maxLingering),
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*conn]struct{}),
		peers:     make(map[netip.Addr]int),
		done:      make(chan struct{}),
	}
	s.bufs.New = func() any { b := make([]byte, copyBufSize); return &b }
	if s.store == nil {
		if err := os.MkdirAll(opt.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("receiver: cannot create frame folder: %w", err)
		}
		if st, err := os.Stat(opt.Dir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("receiver: frame folder %q is not a folder", opt.Dir)
		}
		s.dir = newDirStore(opt.Dir, !opt.NoFsync, opt.MinFreeBytes)
		s.store = s.dir
	}
	var diskFree func() float64
	if s.dir != nil {
		diskFree = func() float64 { n, _ := freeBytes(s.opt.Dir); return float64(n) }
	}
	s.m = newServerMetrics(func() float64 { return float64(s.active.Load()) }, diskFree)
	if s.dir == nil {
		return s, nil
	}
	if _, err := freeBytes(opt.Dir); err != nil && opt.MinFreeBytes > 0 {
		s.log.Warn("free-disk floor not enforced", "dir", opt.Dir, "error", err)
	}
	n := cleanLeftovers(opt.Dir,
		func(path string, size int64) {
			s.log.Info("removed temporary file left by an earlier crash", "path", path, "bytes", size)
		},
		func(path string, err error) {
			s.log.Warn("cannot clean temporary files", "path", path, "error", err)
		})
	s.m.leftovers.Add(n)
	if n > 0 {
		s.log.Info("cleaned leftovers", "dir", opt.Dir, "removed", n)
	}
	return s, nil
}

// ListenAndServe listens on the TCP address addr and calls Serve.
func (s *Server) ListenAndServe(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("receiver: cannot listen on %s: %w", addr, err)
	}
	return s.Serve(l)
}

// Serve accepts connections on l until Shutdown (then it returns
// ErrServerClosed) or until l fails for good. It closes l when it returns.
// Serve may be called for several listeners.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
		l.Close()
	}()

	o := &s.opt
	s.log.Info("receiver listening", "addr", l.Addr().String(), "dir", o.Dir, "store", s.store.String(), "fsync", !o.NoFsync,
		"tls", o.TLS != nil, "mtls", o.TLS != nil && o.TLS.ClientAuth >= tls.VerifyClientCertIfGiven,
		"max_frame_size", o.MaxFrameSize, "max_conns", o.MaxConns, "max_conns_per_peer", o.MaxConnsPerPeer,
		"handshake_timeout", o.HandshakeTimeout, "idle_timeout", o.IdleTimeout,
		"min_rate", o.MinRate, "min_free", o.MinFreeBytes, "settle", o.Settle)

	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.isClosing() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("receiver: listener closed: %w", err)
			}
			// Out of file descriptors and the like: wait and retry rather
			// than spin or give up.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Error("accept failed, retrying", "addr", l.Addr().String(), "error", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-s.done:
				return ErrServerClosed
			}
			continue
		}
		backoff = 0
		s.m.conns.Inc()
		ip := peerIP(nc.RemoteAddr())
		if !s.acquire() {
			s.refuseBusy(nc)
			continue
		}
		if !s.acquirePeer(ip) {
			s.active.Add(-1)
			s.refusePeerBusy(nc)
			continue
		}
		c, ok := s.track(nc)
		if !ok {
			s.active.Add(-1)
			s.releasePeer(ip)
			nc.Close()
			continue
		}
		c.ip = ip
		go c.serve()
	}
}

// acquire takes a connection slot if one is free.
func (s *Server) acquire() bool {
	for {
		n := s.active.Load()
		if n >= int64(s.opt.MaxConns) {
			return false
		}
		if s.active.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// track registers a connection that holds a slot; it fails once Shutdown
// has begun.
func (s *Server) track(nc net.Conn) (*conn, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil, false
	}
	c := newConn(s, nc)
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return c, true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.active.Add(-1)
	s.releasePeer(c.ip)
	s.wg.Done()
}

// refuseBusy answers a connection over MaxConns with "ERR busy" and closes
// it. The answer is sent from a bounded set of goroutines that drain what
// the client already sent, so that the close does not turn into a reset
// that destroys the answer; past that bound the connection is just closed.
func (s *Server) refuseBusy(nc net.Conn) {
	s.m.reject(wire.ReasonBusy)
	if n := s.busyLog.allow(); n >= 0 {
		s.log.Warn("connection refused: too many connections", "peer", nc.RemoteAddr().String(),
			"reason", wire.ReasonBusy, "max_conns", s.opt.MaxConns, "suppressed_since_last", n)
	}
	s.refuse(nc, wire.AppendError(nil, wire.ReasonBusy, "max="+strconv.Itoa(s.opt.MaxConns)))
}

// refusePeerBusy answers a connection from a remote IP that already holds
// MaxConnsPerPeer connections with "ERR busy max-per-peer=<n>": the same
// retryable reason as MaxConns on the wire, counted as "busy-peer".
func (s *Server) refusePeerBusy(nc net.Conn) {
	s.m.reject(ReasonBusyPeer)
	if n := s.peerLog.allow(); n >= 0 {
		s.log.Warn("connection refused: this address holds its share of connections", "peer", nc.RemoteAddr().String(),
			"reason", ReasonBusyPeer, "max_conns_per_peer", s.opt.MaxConnsPerPeer, "suppressed_since_last", n)
	}
	s.refuse(nc, wire.AppendError(nil, wire.ReasonBusy, "max-per-peer="+strconv.Itoa(s.opt.MaxConnsPerPeer)))
}

// refuse sends answer to a connection that gets no slot and closes it.
func (s *Server) refuse(nc net.Conn, answer []byte) {
	s.mu.Lock()
	closing, slot := s.closing, false
	if !closing {
		select {
		case s.linger <- struct{}{}:
			slot = true
			s.wg.Add(1)
		default:
		}
	}
	s.mu.Unlock()
	if !slot {
		// A fresh socket's send buffer is empty, so this write does not
		// block; under TLS there is no way to answer without a handshake.
		if !closing && s.opt.TLS == nil {
			_ = nc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			_, _ = nc.Write(answer)
		}
		nc.Close()
		return
	}
	go func() {
		defer func() { <-s.linger; s.wg.Done() }()
		deadline := time.Now().Add(min(time.Second, s.opt.HandshakeTimeout))
		if s.opt.TLS != nil {
			tc := tls.Server(nc, s.opt.TLS)
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			err := tc.HandshakeContext(ctx)
			cancel()
			if err != nil {
				nc.Close()
				return
			}
			nc = tc
		}
		_ = nc.SetWriteDeadline(deadline)
		_, _ = nc.Write(answer)
		lingerClose(nc, time.Until(deadline))
	}()
}

// peerIP is the remote IP a per-peer share is counted for (IPv4-mapped
// IPv6 unmapped, zone dropped); the zero Addr when there is none.
func peerIP(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	if a == nil {
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap().WithZone("")
}

// acquirePeer takes one of ip's MaxConnsPerPeer connections if one is
// free. Without a per-peer limit it always succeeds.
func (s *Server) acquirePeer(ip netip.Addr) bool {
	if s.opt.MaxConnsPerPeer <= 0 {
		return true
	}
	s.peerMu.Lock()
	defer s.peerMu.Unlock()
	if s.peers[ip] >= s.opt.MaxConnsPerPeer {
		return false
	}
	s.peers[ip]++
	return true
}

func (s *Server) releasePeer(ip netip.Addr) {
	if s.opt.MaxConnsPerPeer <= 0 {
		return
	}
	s.peerMu.Lock()
	defer s.peerMu.Unlock()
	if s.peers[ip] <= 1 {
		delete(s.peers, ip)
	} else {
		s.peers[ip]--
	}
}

// Shutdown stops accepting connections, closes connections waiting between
// frames, lets frames in flight finish (each is acknowledged, then its
// connection closed) until ctx ends, and then closes what is left (those
// frames are not acknowledged and their temporary files are removed). It
// returns once every connection is gone: nil if all finished in time, else
// ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing {
		s.closing = true
		close(s.done)
	}
	for l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		c.stop()
	}
	s.mu.Unlock()

	finished := make(chan struct{})
	go func() { s.wg.Wait(); close(finished) }()
	select {
	case <-finished:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	n := len(s.conns)
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	s.log.Warn("shutdown deadline reached, closed connections with frames in flight", "connections", n)
	<-finished
	return ctx.Err()
}

func (s *Server) isClosing() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// health is "" when the server can take frames, else why not.
func (s *Server) health() string {
	if s.isClosing() {
		return "shutting down"
	}
	if err := s.store.Ready(); err != nil {
		return err.Error()
	}
	return ""
}

// lingerClose half-closes nc, discards what the peer still sends for at
// most d (and at most 1 MiB), then closes it. Closing a socket with unread
// input makes the kernel send a reset, which can destroy an ERR answer
// before the peer reads it.
func lingerClose(nc net.Conn, d time.Duration) {
	type closeWriter interface{ CloseWrite() error }
	if cw, ok := nc.(closeWriter); ok {
		_ = cw.CloseWrite()
	}
	_ = nc.SetReadDeadline(time.Now().Add(d))
	var b [4096]byte
	for n := 0; n < 1<<20; {
		k, err := nc.Read(b[:])
		n += k
		if err != nil {
			break
		}
	}
	nc.Close()
}

// logLimiter lets one log line a second through and counts the rest, so
// that a connection flood cannot flood the log.
type logLimiter struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// allow returns how many lines were suppressed since the last one allowed,
// or -1 if this one is suppressed.
func (l *logLimiter) allow() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if !l.last.IsZero() && now.Sub(l.last) < time.Second {
		l.suppressed++
		return -1
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	return n
}
