package s3_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"framepush/frame"
	"framepush/internal/testutil"
	"framepush/internal/testutil/s3test"
	"framepush/receiver"
	"framepush/sender"
	s3store "framepush/store/s3"
	"framepush/wire"
)

const bucket = "frames"

type rig struct {
	gw    *s3test.Server
	store *s3store.Store
	srv   *receiver.Server
	addr  string
	logs  *testutil.Buffer

	mu     sync.Mutex
	stored []receiver.Stored
}

// newStore connects a Store to gw with test credentials.
func newStore(t testing.TB, gw *s3test.Server, cfg s3store.Config) (*s3store.Store, error) {
	t.Helper()
	gw.SetEnv(t)
	if cfg.URL == "" {
		cfg.URL = "s3://" + bucket + "/site1"
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = gw.Endpoint
	}
	if cfg.MaxFrameSize == 0 {
		cfg.MaxFrameSize = 4 << 20
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return s3store.New(ctx, cfg)
}

// start runs versitygw with a bucket, a Store on it and a receiver in
// front, all on loopback.
func start(t testing.TB, cfg s3store.Config, opt receiver.Options) *rig {
	t.Helper()
	gw := s3test.Start(t)
	gw.MakeBucket(t, bucket)
	return startOn(t, gw, cfg, opt)
}

// startOn runs a Store and a receiver on gw, whose bucket exists.
func startOn(t testing.TB, gw *s3test.Server, cfg s3store.Config, opt receiver.Options) *rig {
	t.Helper()
	r := &rig{gw: gw, logs: &testutil.Buffer{}}
	level := slog.LevelDebug
	if _, bench := t.(*testing.B); bench {
		level = slog.LevelInfo // per-frame lines would cost the benchmark CPU
	}
	log := slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: level}))
	cfg.Logger = log
	st, err := newStore(t, r.gw, cfg)
	if err != nil {
		t.Fatalf("store: %v", err)
	}
	t.Cleanup(st.Close)
	r.store = st
	opt.Store = st
	opt.Logger = log
	opt.MaxFrameSize = 4 << 20
	opt.OnFrame = func(s receiver.Stored) {
		r.mu.Lock()
		r.stored = append(r.stored, s)
		r.mu.Unlock()
	}
	srv, err := receiver.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	r.srv = srv
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = l.Addr().String()
	done := make(chan struct{})
	go func() { _ = srv.Serve(l); close(done) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
		if t.Failed() {
			t.Logf("receiver log:\n%s", r.logs.String())
		}
	})
	return r
}

func jpeg(seq uint64, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(uint64(i)*31 + seq*7)
	}
	copy(b, "\xFF\xD8\xFF\xE0")
	return b
}

var captureBase = time.Date(2026, 11, 24, 5, 40, 0, 0, time.UTC)

func testFrame(seq uint64, n int) frame.Frame {
	return frame.Frame{Data: jpeg(seq, n), Format: "jpeg", Seq: seq, Time: captureBase.Add(time.Duration(seq) * time.Millisecond), Source: "test"}
}

func newSender(t *testing.T, addrs []string, name string, sum wire.Checksum) *sender.Sender {
	t.Helper()
	s, err := sender.New(sender.Options{Addresses: addrs, Extension: true, Name: name, Checksum: sum,
		Terminator: wire.TermLF, ConnectTimeout: 2 * time.Second, AnswerTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func deliver(t *testing.T, s *sender.Sender, f frame.Frame) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Deliver(ctx, f); err != nil {
		t.Fatalf("frame %d not delivered: %v", f.Seq, err)
	}
}

type object struct {
	key  string
	data []byte
	meta map[string]string
}

// objects reads every frame object in the bucket (probe objects excluded).
func objects(t testing.TB, gw *s3test.Server) map[string]object {
	t.Helper()
	c := gw.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := map[string]object{}
	for info := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
		if info.Err != nil {
			t.Fatalf("list: %v", info.Err)
		}
		if strings.Contains(info.Key, ".framerecv/") {
			continue
		}
		o, err := c.GetObject(ctx, bucket, info.Key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(o)
		if err != nil {
			t.Fatalf("read %s: %v", info.Key, err)
		}
		st, err := o.Stat()
		if err != nil {
			t.Fatal(err)
		}
		meta := map[string]string{}
		for k, v := range st.UserMetadata {
			meta[strings.ToLower(k)] = v
		}
		out[info.Key] = object{key: info.Key, data: b, meta: meta}
	}
	return out
}

func hexSHA(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

// Frames from the real sender, through the receiver, are in the bucket
// byte for byte under PREFIX/<name>/<date>/<hour>/<id>.<ext>, with their
// metadata, whatever checksum the agent announced.
func TestFramesLandByteIdenticalWithMetadata(t *testing.T) {
	r := start(t, s3store.Config{Instance: "recv-a"}, receiver.Options{})
	sizes := []int{1, 4096, 65536, 1 << 20}
	want := map[string][]byte{}
	for i, sum := range []wire.Checksum{wire.ChecksumSHA256, wire.ChecksumCRC32C, wire.ChecksumNone} {
		name := fmt.Sprintf("cam-%d", i)
		s := newSender(t, []string{r.addr}, name, sum)
		for j, n := range sizes {
			f := testFrame(uint64(j+1), n)
			if n == 1 {
				f.Data = []byte{0x42}
			}
			deliver(t, s, f)
			ext := "jpg"
			if n == 1 {
				ext = "bin"
			}
			key := fmt.Sprintf("site1/%s/2026-11-24/05/%d.%s", name, f.Seq, ext)
			want[key] = f.Data
		}
	}
	got := objects(t, r.gw)
	if len(got) != len(want) {
		keys := []string{}
		for k := range got {
			keys = append(keys, k)
		}
		t.Fatalf("bucket holds %d objects, want %d: %v", len(got), len(want), keys)
	}
	for key, data := range want {
		o, ok := got[key]
		if !ok {
			t.Fatalf("no object %s", key)
		}
		if !bytes.Equal(o.data, data) {
			t.Fatalf("%s: %d bytes that differ from the %d sent", key, len(o.data), len(data))
		}
		parts := strings.Split(key, "/")
		name, id := parts[1], strings.SplitN(parts[4], ".", 2)[0]
		checks := map[string]string{
			"framepush-device":   name,
			"framepush-id":       id,
			"framepush-receiver": "recv-a",
			"framepush-client":   name,
		}
		for k, v := range checks {
			if o.meta[k] != v {
				t.Errorf("%s: metadata %s = %q, want %q (all: %v)", key, k, o.meta[k], v, o.meta)
			}
		}
		if ct := o.meta["framepush-capture-time"]; !strings.HasPrefix(ct, "2026-11-24T05:40:00.00") {
			t.Errorf("%s: capture time %q", key, ct)
		}
		if p := o.meta["framepush-peer"]; !strings.HasPrefix(p, "127.0.0.1:") {
			t.Errorf("%s: peer %q", key, p)
		}
		sum := o.meta["framepush-checksum"]
		if name == "cam-0" && sum != "sha256:"+hexSHA(data) {
			t.Errorf("%s: checksum %q, want the sha256 the agent sent", key, sum)
		}
		if name != "cam-0" && !strings.HasPrefix(sum, "crc32c:") {
			t.Errorf("%s: checksum %q, want crc32c", key, sum)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.stored) != len(want) {
		t.Fatalf("OnFrame saw %d frames, want %d", len(r.stored), len(want))
	}
	for _, st := range r.stored {
		if !strings.HasPrefix(st.Path, "s3://frames/site1/") || st.Duplicate {
			t.Errorf("Stored %+v", st)
		}
	}
}

// A frame without the extension gets a key of its own that names this
// instance, so two receivers never write the same key.
func TestFrameWithoutIDGetsNonCollidingKey(t *testing.T) {
	r := start(t, s3store.Config{Instance: "recv-b"}, receiver.Options{})
	s, err := sender.New(sender.Options{Addresses: []string{r.addr}, Terminator: wire.TermLF})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	for i := range 3 {
		deliver(t, s, frame.Frame{Data: jpeg(uint64(i), 3000), Seq: uint64(i + 1), Time: captureBase})
	}
	got := objects(t, r.gw)
	if len(got) != 3 {
		t.Fatalf("%d objects, want 3", len(got))
	}
	for key, o := range got {
		if !strings.HasPrefix(key, "site1/127.0.0.1/") || !strings.Contains(key, "-recv-b-") || !strings.HasSuffix(key, ".jpg") {
			t.Errorf("key %s: want site1/127.0.0.1/<date>/<hour>/<stamp>-recv-b-<seq>.jpg", key)
		}
		if o.meta["framepush-receiver"] != "recv-b" || o.meta["framepush-id"] != "" {
			t.Errorf("%s: metadata %v", key, o.meta)
		}
	}
}

// A resend of the same frame (lost GOT IMAGE, or a second receiver) is
// acknowledged but stored once; another frame with the same name and id
// is kept under a key of its own.
func TestResendIsStoredOnce(t *testing.T) {
	r := start(t, s3store.Config{}, receiver.Options{})
	f := testFrame(7, 50000)
	for range 3 {
		s := newSender(t, []string{r.addr}, "porch", wire.ChecksumSHA256)
		deliver(t, s, f) // a fresh sender each time: the same frame, resent
	}
	got := objects(t, r.gw)
	if len(got) != 1 {
		t.Fatalf("%d objects after 3 sends of one frame, want 1: %v", len(got), got)
	}
	r.mu.Lock()
	dups := 0
	for _, st := range r.stored {
		if st.Duplicate {
			dups++
		}
	}
	r.mu.Unlock()
	if dups != 2 {
		t.Fatalf("%d of 3 acknowledgements were duplicates, want 2", dups)
	}
	if !strings.Contains(metricsText(t, r.srv), "framerecv_store_duplicates_total 2") {
		t.Errorf("duplicates not counted:\n%s", metricsText(t, r.srv))
	}

	other := f
	other.Data = jpeg(99, 50000) // same name, id and time; other bytes
	deliver(t, newSender(t, []string{r.addr}, "porch", wire.ChecksumSHA256), other)
	got = objects(t, r.gw)
	if len(got) != 2 {
		t.Fatalf("%d objects, want 2 (the conflicting frame kept apart)", len(got))
	}
	found := false
	for key, o := range got {
		if strings.Contains(key, ".conflict-") && bytes.Equal(o.data, other.Data) {
			found = true
		}
	}
	if !found {
		t.Fatalf("conflicting frame not kept: %v", got)
	}
}

func metricsText(t testing.TB, srv *receiver.Server) string {
	t.Helper()
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}

func readyz(srv *receiver.Server) (int, string) {
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	return rec.Code, rec.Body.String()
}

// rawFrame sends one frame by hand and returns the receiver's answers.
func rawFrame(t *testing.T, addr string, data []byte, meta *wire.Meta) (string, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(wire.AppendSize(nil, int64(len(data)), meta, wire.TermLF)); err != nil {
		return "", err
	}
	ar := wire.NewAnswerReader(c)
	if err := ar.Expect(wire.GotSize); err != nil {
		return errText(err), nil
	}
	if _, err := c.Write(data); err != nil {
		return "", err
	}
	if err := ar.Expect(wire.GotImage); err != nil {
		return errText(err), nil
	}
	return wire.GotImage, nil
}

func errText(err error) string {
	if re, ok := err.(*wire.RejectError); ok {
		return "ERR " + re.Reason + " " + re.Detail
	}
	return err.Error()
}

// The store frozen (SIGSTOP) and then killed mid-stream: every answer
// meanwhile is a retryable ERR, /readyz says 503, new frames are refused
// before GOT SIZE, nothing acknowledged is missing, and delivery resumes
// when the store is back.
func TestStoreStoppedAndKilledMidStream(t *testing.T) {
	r := start(t, s3store.Config{Timeout: 1500 * time.Millisecond, ProbeEvery: 100 * time.Millisecond}, receiver.Options{})
	var (
		mu    sync.Mutex
		acked []frame.Frame
	)
	stop := make(chan struct{})
	agentDone := make(chan struct{})
	go func() {
		defer close(agentDone)
		s, err := sender.New(sender.Options{Addresses: []string{r.addr}, Extension: true, Name: "yard", Checksum: wire.ChecksumCRC32C,
			Terminator: wire.TermLF, AnswerTimeout: 10 * time.Second})
		if err != nil {
			t.Error(err)
			return
		}
		defer s.Close(context.Background())
		for seq := uint64(1); ; seq++ {
			select {
			case <-stop:
				return
			default:
			}
			f := testFrame(seq, 20000)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			err := s.Deliver(ctx, f)
			cancel()
			if err != nil {
				t.Errorf("frame %d: %v", seq, err)
				return
			}
			mu.Lock()
			acked = append(acked, f)
			mu.Unlock()
		}
	}()
	nAcked := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	testutil.WaitFor(t, "first frames", 20*time.Second, func() bool { return nAcked() >= 5 })

	for _, outage := range []string{"SIGSTOP", "SIGKILL"} {
		if outage == "SIGSTOP" {
			r.gw.Stop()
		} else {
			r.gw.Kill()
		}
		testutil.WaitFor(t, "store marked unusable after "+outage, 20*time.Second, func() bool { return r.store.Ready() != nil })
		if code, body := readyz(r.srv); code != http.StatusServiceUnavailable {
			t.Errorf("%s: /readyz %d %q, want 503", outage, code, body)
		}
		// A new frame is refused before GOT SIZE, retryably.
		ans, err := rawFrame(t, r.addr, jpeg(1, 100), &wire.Meta{Name: "probe", ID: "1", Time: captureBase})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(ans, "ERR busy store unavailable") {
			t.Errorf("%s: answer %q, want ERR busy store unavailable before GOT SIZE", outage, ans)
		}
		if wire.Permanent(strings.Fields(ans)[1]) {
			t.Errorf("%s: %q is permanent", outage, ans)
		}
		if !strings.Contains(metricsText(t, r.srv), "framerecv_store_ready 0") {
			t.Errorf("%s: framerecv_store_ready not 0", outage)
		}
		before := nAcked()
		time.Sleep(500 * time.Millisecond)
		if outage == "SIGSTOP" {
			r.gw.Cont()
		} else {
			r.gw.Restart()
		}
		testutil.WaitFor(t, "store usable after "+outage, 30*time.Second, func() bool { return r.store.Ready() == nil })
		testutil.WaitFor(t, "delivery resumed after "+outage, 60*time.Second, func() bool { return nAcked() >= before+5 })
		if code, _ := readyz(r.srv); code != http.StatusOK {
			t.Errorf("after %s: /readyz %d, want 200", outage, code)
		}
	}
	close(stop)
	<-agentDone

	got := objects(t, r.gw)
	mu.Lock()
	defer mu.Unlock()
	for _, f := range acked {
		key := fmt.Sprintf("site1/yard/2026-11-24/05/%d.jpg", f.Seq)
		o, ok := got[key]
		if !ok {
			t.Fatalf("acknowledged frame %d is not in the bucket", f.Seq)
		}
		if !bytes.Equal(o.data, f.Data) {
			t.Fatalf("frame %d differs in the bucket", f.Seq)
		}
	}
	logs := r.logs.String()
	if n := strings.Count(logs, "object store unusable: refusing new frames"); n != 2 {
		t.Errorf("outage logged %d times, want once per outage (2):\n%s", n, logs)
	}
	if n := strings.Count(logs, "object store usable again"); n != 2 {
		t.Errorf("recovery logged %d times, want 2", n)
	}
	if !strings.Contains(metricsText(t, r.srv), "framerecv_store_outages_total 2") {
		t.Errorf("outages not counted")
	}
}

// The memory budget refuses a frame before GOT SIZE with ERR busy while
// other frames hold it, and takes frames again once they are done.
func TestMemoryBudgetRefusesBeforeGotSize(t *testing.T) {
	r := start(t, s3store.Config{MemoryBudget: 4 << 20}, receiver.Options{})
	// Hold 4 MiB: a frame past GOT SIZE whose payload never comes.
	c, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(wire.AppendSize(nil, 4<<20, nil, wire.TermLF)); err != nil {
		t.Fatal(err)
	}
	if err := wire.NewAnswerReader(c).Expect(wire.GotSize); err != nil {
		t.Fatal(err)
	}
	ans, err := rawFrame(t, r.addr, jpeg(1, 1000), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ans, "ERR busy memory in-flight=4194304 budget=4194304") {
		t.Fatalf("answer %q, want ERR busy memory ... before GOT SIZE", ans)
	}
	c.Close()
	testutil.WaitFor(t, "budget released", 10*time.Second, func() bool {
		return strings.Contains(metricsText(t, r.srv), "framerecv_store_memory_bytes 0")
	})
	if ans, _ := rawFrame(t, r.addr, jpeg(1, 1000), nil); ans != wire.GotImage {
		t.Fatalf("after release: %q", ans)
	}
}

// Start-up refuses a store it cannot use, saying what to fix.
func TestStartupErrors(t *testing.T) {
	gw := s3test.Start(t)
	gw.MakeBucket(t, bucket)

	_, err := newStore(t, gw, s3store.Config{URL: "s3://no-such-bucket/x"})
	if err == nil || !strings.Contains(err.Error(), `bucket "no-such-bucket" does not exist`) {
		t.Errorf("missing bucket: %v", err)
	}

	gw.SetEnv(t)
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = s3store.New(ctx, s3store.Config{URL: "s3://" + bucket, Endpoint: gw.Endpoint})
	if err == nil || !strings.Contains(err.Error(), "refused the credentials") || !strings.Contains(err.Error(), "AWS_SECRET_ACCESS_KEY") {
		t.Errorf("bad secret: %v", err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "nobody")
	_, err = s3store.New(ctx, s3store.Config{URL: "s3://" + bucket, Endpoint: gw.Endpoint})
	if err == nil || !strings.Contains(err.Error(), "refused the credentials") {
		t.Errorf("unknown access key: %v", err)
	}

	gw.SetEnv(t)
	gw.Kill()
	_, err = s3store.New(ctx, s3store.Config{URL: "s3://" + bucket, Endpoint: gw.Endpoint})
	if err == nil || !strings.Contains(err.Error(), "cannot reach the store") {
		t.Errorf("store down: %v", err)
	}

	for _, bad := range []s3store.Config{
		{URL: "frames"}, {URL: "s3://"}, {URL: "s3://b", Endpoint: "ftp://x"},
		{URL: "s3://b", Endpoint: gw.Endpoint, MemoryBudget: 1 << 20, MaxFrameSize: 2 << 20},
	} {
		if _, err := s3store.New(ctx, bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// TLS to the store is verified: a certificate from an unknown CA stops
// the start with a clear error; --s3-ca (CAFile) makes it trusted.
func TestTLSToTheStoreIsVerified(t *testing.T) {
	pki := testutil.NewPKI(t, "store-ca")
	gw := s3test.StartTLS(t, pki.ServerCert, pki.ServerKey)
	gw.SetEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := s3store.New(ctx, s3store.Config{URL: "s3://" + bucket, Endpoint: gw.Endpoint})
	if err == nil || !strings.Contains(err.Error(), "is not trusted") || !strings.Contains(err.Error(), "--s3-ca") {
		t.Fatalf("unknown CA accepted or unclear: %v", err)
	}
	t.Logf("without the CA: %v", err)
	// With the CA the handshake succeeds and the store answers: the bucket
	// is missing (none was made), which proves the request got through.
	_, err = s3store.New(ctx, s3store.Config{URL: "s3://" + bucket, Endpoint: gw.Endpoint, CAFile: pki.CA})
	if err == nil || !strings.Contains(err.Error(), `bucket "frames" does not exist`) {
		t.Fatalf("with --s3-ca: %v", err)
	}
}
