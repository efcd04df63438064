package receiver

import (
	"context"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"framepush/wire"
)

// logRecord is one captured log line with its attributes as strings.
type logRecord struct {
	Level slog.Level
	Msg   string
	Attrs map[string]string
}

// logSink captures a server's logs for assertions.
type logSink struct {
	mu   sync.Mutex
	recs []logRecord
}

type recHandler struct {
	sink  *logSink
	attrs []slog.Attr
}

func (h *recHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *recHandler) Handle(_ context.Context, r slog.Record) error {
	m := make(map[string]string)
	for _, a := range h.attrs {
		m[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
	h.sink.mu.Lock()
	h.sink.recs = append(h.sink.recs, logRecord{r.Level, r.Message, m})
	h.sink.mu.Unlock()
	return nil
}

func (h *recHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &recHandler{sink: h.sink, attrs: append(slices.Clip(h.attrs), as...)}
}

func (h *recHandler) WithGroup(string) slog.Handler { return h }

func (s *logSink) logger() *slog.Logger { return slog.New(&recHandler{sink: s}) }

// find returns the first record matching pred.
func (s *logSink) find(pred func(logRecord) bool) (logRecord, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.recs {
		if pred(r) {
			return r, true
		}
	}
	return logRecord{}, false
}

// wait polls for a record matching pred; the server logs a refusal after
// the client may already have seen the connection end.
func (s *logSink) wait(t *testing.T, what string, pred func(logRecord) bool) logRecord {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if r, ok := s.find(pred); ok {
			return r
		}
		if time.Now().After(deadline) {
			s.mu.Lock()
			defer s.mu.Unlock()
			for _, r := range s.recs {
				t.Logf("log: %s %q %v", r.Level, r.Msg, r.Attrs)
			}
			t.Fatalf("no log record %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (s *logSink) forPeer(t *testing.T, peer string) logRecord {
	t.Helper()
	return s.wait(t, "for peer "+peer, func(r logRecord) bool {
		return r.Attrs["peer"] == peer && r.Level >= slog.LevelWarn
	})
}

type testServer struct {
	*Server
	addr string
	dir  string
	logs *logSink
}

// startServer runs a Server on a loopback port with logs captured; it is
// shut down at the end of the test, which also checks that no temporary
// file is left.
func startServer(t *testing.T, opt Options) *testServer {
	t.Helper()
	if opt.Dir == "" {
		opt.Dir = t.TempDir()
	}
	logs := &logSink{}
	opt.Logger = logs.logger()
	s, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != ErrServerClosed {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
		if _, temps := listFiles(t, opt.Dir); len(temps) > 0 {
			t.Errorf("temporary files left: %v", temps)
		}
	})
	return &testServer{Server: s, addr: l.Addr().String(), dir: opt.Dir, logs: logs}
}

// dial connects with an overall deadline so that a broken server fails
// the test instead of hanging it.
func (ts *testServer) dial(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// sendFrame runs one SIZE / GOT SIZE / payload / GOT IMAGE exchange.
func sendFrame(c net.Conn, ar *wire.AnswerReader, payload []byte, meta *wire.Meta, term wire.Terminator) error {
	if _, err := c.Write(wire.AppendSize(nil, int64(len(payload)), meta, term)); err != nil {
		return err
	}
	if err := ar.Expect(wire.GotSize); err != nil {
		return err
	}
	if _, err := c.Write(payload); err != nil {
		return err
	}
	return ar.Expect(wire.GotImage)
}

// readAll reads what the server sends until it closes.
func readAll(t *testing.T, c net.Conn) string {
	t.Helper()
	b, err := io.ReadAll(c)
	if err != nil && !isReset(err) {
		t.Fatalf("reading answers: %v (got %q)", err, b)
	}
	return string(b)
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}

// readN reads exactly n bytes.
func readN(t *testing.T, c net.Conn, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("reading %d bytes: %v (got %q)", n, err, b)
	}
	return string(b)
}

// listFiles returns the final frame files and the temporary files under
// dir, as paths relative to dir, sorted.
func listFiles(t *testing.T, dir string) (finals, temps []string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if de.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if strings.HasPrefix(de.Name(), tempPrefix) {
			temps = append(temps, rel)
		} else {
			finals = append(finals, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(finals)
	slices.Sort(temps)
	return finals, temps
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// payload returns n deterministic bytes starting with prefix.
func payload(n int, prefix string, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7) + byte(i>>9)
	}
	copy(b, prefix)
	return b
}

const jpegMagic = "\xFF\xD8\xFF\xE0"
const pngMagic = "\x89PNG\r\n\x1a\n"
