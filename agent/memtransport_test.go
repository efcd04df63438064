package agent

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"framepush/config"
	"framepush/frame"
	"framepush/receiver"
	"framepush/sender"
	"framepush/wire"
)

// memRecv is an in-memory stand-in for the receivers of the agent's tests
// where a receiver adds nothing: the test is about what the agent counts,
// queues, spools, logs or reports, not about bytes on a wire. Its
// transports (memTransport) implement the agent's own Transport seam, so
// the agent's send loop, settle and queue run unchanged; the wire, TLS,
// reconnects and the receiver's store are tested with the loopback
// receiver (startRecv) in the tests that need them.
type memRecv struct {
	Addr string // what the agent's server.addresses names it by

	mu     sync.Mutex
	frames []delivered
	down   bool                    // every attempt fails as a refused connection
	refuse func(frame.Frame) error // non-nil error: the frame is refused with it
}

// delivered is one frame a receiver acknowledged: what checkFrames looks at.
type delivered struct {
	ID, Name string
	Time     time.Time
	Data     []byte
}

func newMemRecv(addr string) *memRecv { return &memRecv{Addr: addr} }

// setDown makes the receiver unreachable (true) or reachable again.
func (m *memRecv) setDown(down bool) {
	m.mu.Lock()
	m.down = down
	m.mu.Unlock()
}

// Frames returns the frames acknowledged so far, in order.
func (m *memRecv) Frames() []delivered {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]delivered(nil), m.frames...)
}

// transport is an Options.NewTransport that delivers to m.
func (m *memRecv) transport(cfg config.Config, _ *slog.Logger) (Transport, error) {
	return &memTransport{recv: m, name: cfg.Name, retry: cfg.Server.Backoff.Initial}, nil
}

// options returns o with its transports delivering to m.
func (m *memRecv) options(o Options) Options {
	o.NewTransport = m.transport
	return o
}

// memTransport is one pipeline's link to a memRecv.
type memTransport struct {
	recv  *memRecv
	name  string
	retry time.Duration // a Sender waits its backoff before dialing again; so does this

	mu     sync.Mutex
	stats  sender.Stats
	failed bool // the last attempt failed: the next connection is a reconnect
}

func (t *memTransport) SendID(ctx context.Context, f frame.Frame, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m := t.recv
	m.mu.Lock()
	down, refuse := m.down, m.refuse
	m.mu.Unlock()
	if down {
		t.mu.Lock()
		t.stats.Connected, t.stats.Failures, t.failed = false, t.stats.Failures+1, true
		t.mu.Unlock()
		select { // no busy loop through an outage
		case <-ctx.Done():
		case <-time.After(t.retry):
		}
		return &sender.Error{Addr: m.Addr, Op: "connect", Err: syscall.ECONNREFUSED}
	}
	t.mu.Lock()
	if !t.stats.Connected {
		t.stats.Connects++
		if t.failed {
			t.stats.Reconnects++
		}
		t.stats.Connected, t.stats.Address = true, m.Addr
	}
	t.mu.Unlock()
	if refuse != nil {
		if err := refuse(f); err != nil {
			return &sender.Error{Addr: m.Addr, Op: "SIZE refused", Err: err}
		}
	}
	m.mu.Lock()
	m.frames = append(m.frames, delivered{ID: id, Name: t.name, Time: f.Time, Data: f.Data})
	m.mu.Unlock()
	t.mu.Lock()
	t.stats.Sent++
	t.stats.Bytes += uint64(len(f.Data))
	t.stats.LastSuccess, t.failed = time.Now(), false
	t.mu.Unlock()
	return nil
}

func (t *memTransport) Close(context.Context) error {
	t.mu.Lock()
	t.stats.Connected = false
	t.mu.Unlock()
	return nil
}

func (t *memTransport) Stats() sender.Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stats
}

// refuseOver refuses frames over limit bytes for good, as a receiver
// started with MaxFrameSize limit answers their SIZE.
func refuseOver(limit int) func(frame.Frame) error {
	return func(f frame.Frame) error {
		if len(f.Data) <= limit {
			return nil
		}
		return &wire.RejectError{Reason: wire.ReasonTooLarge, Detail: fmt.Sprintf("%d bytes is over the limit of %d", len(f.Data), limit)}
	}
}

// storedFrames reads what a loopback receiver stored, for checkFrames.
func storedFrames(t *testing.T, st []receiver.Stored) []delivered {
	t.Helper()
	out := make([]delivered, 0, len(st))
	for _, s := range st {
		data, err := os.ReadFile(s.Path)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, delivered{ID: s.Meta.ID, Name: s.Meta.Name, Time: s.Meta.Time, Data: data})
	}
	return out
}

// The in-memory transport is the agent's Transport as the send loop sees
// it: every frame it acknowledges is held, under the id the queue gave it.
func TestMemTransportHoldsWhatItAcknowledges(t *testing.T) {
	m := newMemRecv("127.0.0.1:1")
	tx, _ := m.transport(config.Config{Name: "n"}, nil)
	f := frame.Frame{Data: []byte("abc"), Time: time.Now()}
	if err := tx.SendID(context.Background(), f, "r-1"); err != nil {
		t.Fatal(err)
	}
	m.setDown(true)
	if err := tx.SendID(context.Background(), f, "r-2"); err == nil || sender.IsPermanent(err) {
		t.Fatalf("down: %v, want a retryable error", err)
	}
	m.setDown(false)
	m.refuse = refuseOver(2)
	if err := tx.SendID(context.Background(), f, "r-3"); !sender.IsPermanent(err) {
		t.Fatalf("over the limit: %v, want a permanent refusal", err)
	}
	got := m.Frames()
	if len(got) != 1 || got[0].ID != "r-1" || got[0].Name != "n" || !bytes.Equal(got[0].Data, f.Data) {
		t.Fatalf("held %+v, want the one acknowledged frame", got)
	}
	if st := tx.Stats(); st.Connects != 2 || st.Reconnects != 1 || st.Sent != 1 {
		t.Fatalf("stats %+v: want 2 connects, 1 reconnect, 1 sent", st)
	}
}
