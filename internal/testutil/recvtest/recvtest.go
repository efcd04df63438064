// Package recvtest runs the reference receiver on loopback for the tests
// of the packages that talk to it, recording what it stored.
package recvtest

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"framepush/receiver"
)

// Receiver is a running receiver.Server.
type Receiver struct {
	*receiver.Server
	Addr string // where it listens
	Dir  string // where it stores

	t        testing.TB
	mu       sync.Mutex
	stored   []receiver.Stored
	stopOnce sync.Once
	served   chan struct{}
}

// Start runs a receiver on addr ("127.0.0.1:0": any free port) until Stop
// or the end of the test. Unset options take test defaults: a temporary
// Dir, fsync off, no free-disk floor, no logging. OnFrame is taken to
// record the frames.
func Start(t testing.TB, addr string, opt receiver.Options) *Receiver {
	t.Helper()
	if opt.Dir == "" {
		opt.Dir = t.TempDir()
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	opt.NoFsync = true
	opt.MinFreeBytes = -1
	r := &Receiver{Dir: opt.Dir, t: t, served: make(chan struct{})}
	opt.OnFrame = func(s receiver.Stored) {
		r.mu.Lock()
		r.stored = append(r.stored, s)
		r.mu.Unlock()
	}
	srv, err := receiver.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	// A port another receiver just released (a restart in a test) may take
	// the kernel a moment to free.
	for i := 0; ; i++ {
		ln, err = net.Listen("tcp", addr)
		if err == nil || i == 50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	r.Server, r.Addr = srv, ln.Addr().String()
	go func() { srv.Serve(ln); close(r.served) }()
	t.Cleanup(r.Stop)
	return r
}

// Stop shuts the receiver down, letting frames in flight finish. It is
// safe to call more than once.
func (r *Receiver) Stop() {
	r.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			r.t.Errorf("receiver Shutdown: %v", err)
		}
		<-r.served
	})
}

// Frames returns the frames stored so far, in arrival order.
func (r *Receiver) Frames() []receiver.Stored {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]receiver.Stored(nil), r.stored...)
}
