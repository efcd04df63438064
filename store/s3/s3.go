// Package s3 is framerecv's object store: each frame becomes one object in
// an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, SeaweedFS, Garage,
// versitygw), written with one atomic PUT whose checksum the store checks,
// and GOT IMAGE is sent only after the store confirmed it. Only
// cmd/framerecv imports this package, so the agent never links minio-go.
//
// Keys: a frame with the extension's name=, id= and ts= goes to
//
//	PREFIX/<name>/<YYYY-MM-DD>/<HH>/<id>.<ext>
//
// from its capture time (UTC), written with If-None-Match: *, so a resend
// (after a lost GOT IMAGE, or to another framerecv instance) lands on the
// same key and is recognised as a duplicate instead of stored twice. A frame
// without them goes to
//
//	PREFIX/<client>/<YYYY-MM-DD>/<HH>/<arrival stamp>-<instance>-<seq>.<ext>
//
// which never collides across instances (the instance name carries a random
// part drawn at start).
//
// A frame whose checksum the agent announced is streamed: its PUT starts
// with its first bytes and the payload flows into it as it arrives, the
// last byte held back until the receiver verified the frame (stream.go).
//
// Memory: a frame is held in memory from GOT SIZE until its PUT returned
// (streamed or not), under one budget for the whole process
// (Config.MemoryBudget); when it is full, new frames are refused with
// "ERR busy" before GOT SIZE. Nothing
// spills to a local file: the receiver stays stateless, and the budget must
// be at least the largest frame accepted.
package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"math/bits"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"framepush/internal/logging"
	"framepush/receiver"
	"framepush/wire"
)

// Defaults for zero Config fields.
const (
	DefaultTimeout      = 5 * time.Second // below the agent's 10 s answer timeout
	DefaultMemoryBudget = 256 << 20
	DefaultProbeEvery   = time.Second
)

// Config configures a Store.
type Config struct {
	// URL is s3://BUCKET[/PREFIX].
	URL string
	// Endpoint is the store's URL, http://host:port or https://host:port;
	// empty means AWS S3 (https, the region's endpoint).
	Endpoint string
	// Region (default: AWS_REGION, else AWS_DEFAULT_REGION, else
	// us-east-1 for a custom endpoint and a lookup for AWS).
	Region string
	// Creds, if nil, are read from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
	// and AWS_SESSION_TOKEN, then the shared credentials file
	// (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, profile
	// AWS_PROFILE), then, for AWS only, the instance's IAM role.
	Creds *credentials.Credentials
	// CAFile adds PEM CAs to the system pool for verifying the store's
	// TLS certificate (TLS is always verified).
	CAFile string
	// Timeout bounds one PUT including connecting (default 5 s). Keep it
	// below the agents' answer timeout (10 s by default), so that a slow
	// store is answered with a retryable ERR rather than a silent agent
	// timeout. minio-go's own retries are off: the agent retries.
	Timeout time.Duration
	// MemoryBudget bounds the payload bytes held for frames in flight
	// (default 256 MiB). It must be at least MaxFrameSize.
	MemoryBudget int64
	// MaxFrameSize is the largest frame the receiver accepts.
	MaxFrameSize int64
	// Instance names this receiver in object metadata and in the keys of
	// frames without an id (default: host name plus a random suffix).
	Instance string
	// ProbeEvery is how often an unusable store is probed (default 1 s).
	ProbeEvery time.Duration
	// Buffered turns streaming off: every frame is PUT only once all of it
	// arrived. By default a frame whose checksum the agent announced is
	// streamed: its PUT starts with its first bytes (see stream.go).
	Buffered bool
	// MaxConns sizes the HTTP connection pool (default 256).
	MaxConns int
	Logger   *slog.Logger
}

// Store keeps frames in a bucket. It implements receiver.Store.
type Store struct {
	c                *minio.Client
	bucket, prefix   string
	endpoint         string
	instance         string
	timeout, probeEv time.Duration
	budget           int64
	stream           bool // stream frames with an announced checksum (!Config.Buffered)
	log              *slog.Logger

	inflight atomic.Int64 // bytes of buffers handed out
	seq      atomic.Uint64
	lastNS   atomic.Int64
	pools    [64]sync.Pool

	mu       sync.Mutex
	down     error // nil while usable
	downAt   time.Time
	failures int
	stop     chan struct{}
	probing  bool
	wg       sync.WaitGroup

	m struct {
		set        *metrics.Set
		puts       *metrics.Counter
		putErrors  *metrics.Counter
		duplicates *metrics.Counter
		conflicts  *metrics.Counter
		outages    *metrics.Counter
		putTime    *metrics.PrometheusHistogram
		streamed   *metrics.Counter
		// streamFallbacks: streamed PUTs that ended early and were
		// PUT again from memory.
		streamFallbacks *metrics.Counter
	}
}

// ParseURL splits s3://BUCKET[/PREFIX] into bucket and prefix (no leading
// or trailing slash).
func ParseURL(s string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(s, "s3://")
	if !ok {
		return "", "", fmt.Errorf("store %q: want s3://BUCKET[/PREFIX]", s)
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	prefix = strings.Trim(prefix, "/")
	if bucket == "" {
		return "", "", fmt.Errorf("store %q has no bucket: want s3://BUCKET[/PREFIX]", s)
	}
	return bucket, prefix, nil
}

// New connects to the store and checks that the bucket exists and is
// writable (it writes and deletes one small probe object under
// PREFIX/.framerecv/), giving a clear error otherwise.
func New(ctx context.Context, cfg Config) (*Store, error) {
	bucket, prefix, err := ParseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MemoryBudget <= 0 {
		cfg.MemoryBudget = DefaultMemoryBudget
	}
	if cfg.ProbeEvery <= 0 {
		cfg.ProbeEvery = DefaultProbeEvery
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 256
	}
	if cfg.Logger == nil {
		cfg.Logger = logging.Discard
	}
	if cfg.MaxFrameSize > cfg.MemoryBudget {
		return nil, fmt.Errorf("memory budget %d bytes is below the largest frame accepted (%d bytes): raise the budget or lower the frame limit", cfg.MemoryBudget, cfg.MaxFrameSize)
	}
	if cfg.Instance == "" {
		cfg.Instance = defaultInstance()
	}
	if cfg.Region == "" {
		cfg.Region = os.Getenv("AWS_REGION")
		if cfg.Region == "" {
			cfg.Region = os.Getenv("AWS_DEFAULT_REGION")
		}
	}
	host, secure, aws := "s3.amazonaws.com", true, true
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("S3 endpoint %q: want http://HOST:PORT or https://HOST:PORT", cfg.Endpoint)
		}
		host, secure, aws = u.Host, u.Scheme == "https", false
		if cfg.Region == "" {
			cfg.Region = "us-east-1" // spares a GetBucketLocation round trip
		}
	}
	if cfg.Creds == nil {
		providers := []credentials.Provider{&credentials.EnvAWS{}, &credentials.FileAWSCredentials{}}
		if aws {
			providers = append(providers, &credentials.IAM{})
		}
		cfg.Creds = credentials.NewChainCredentials(providers)
	}
	tr, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, err
	}
	// minio-go's defaults (30 s dial, 1 min response header, 10 retries
	// with backoff) made a refused connection take seconds to fail; the
	// agent retries, so fail within Timeout and let it.
	tr.DialContext = (&net.Dialer{Timeout: min(2*time.Second, cfg.Timeout), KeepAlive: 30 * time.Second}).DialContext
	tr.ResponseHeaderTimeout = cfg.Timeout
	tr.TLSHandshakeTimeout = cfg.Timeout
	tr.MaxIdleConnsPerHost = cfg.MaxConns
	tr.MaxIdleConns = cfg.MaxConns
	if cfg.CAFile != "" && secure {
		if err := addCAs(tr, cfg.CAFile); err != nil {
			return nil, err
		}
	}
	lookup := minio.BucketLookupAuto
	if !aws {
		lookup = minio.BucketLookupPath
	}
	c, err := minio.New(host, &minio.Options{
		Creds: cfg.Creds, Secure: secure, Region: cfg.Region, Transport: tr,
		BucketLookup: lookup, MaxRetries: 1, // 1 = no retry
		// Needed for minio-go to accept an x-amz-checksum-* header; with
		// the header given it sends no trailer (nothing aws-chunked).
		TrailingHeaders: true,
	})
	if err != nil {
		return nil, fmt.Errorf("S3 client for %s: %w", host, err)
	}
	endpoint := cfg.Endpoint
	if endpoint == "" {
		endpoint = "https://" + host
	}
	s := &Store{
		c: c, bucket: bucket, prefix: prefix, endpoint: endpoint, instance: cfg.Instance,
		timeout: cfg.Timeout, probeEv: cfg.ProbeEvery, budget: cfg.MemoryBudget, stream: !cfg.Buffered,
		log: cfg.Logger, stop: make(chan struct{}),
	}
	s.initMetrics()
	if err := s.startupCheck(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func addCAs(tr *http.Transport, file string) error {
	pem, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("S3 CA file: %w", err)
	}
	pool := tr.TLSClientConfig.RootCAs
	if pool == nil {
		if pool, err = x509SystemPool(); err != nil {
			return err
		}
	}
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("S3 CA file %s holds no PEM certificate", file)
	}
	tr.TLSClientConfig.RootCAs = pool
	return nil
}

func defaultInstance() string {
	h, _ := os.Hostname()
	h = sanitize(h)
	if h == "" {
		h = "framerecv"
	}
	var r [3]byte
	_, _ = rand.Read(r[:])
	return h + "-" + hex.EncodeToString(r[:])
}

// sanitize keeps [A-Za-z0-9._-], replacing anything else by '-'.
func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '-'
		}
	}
	return string(b)
}

func (s *Store) initMetrics() {
	set := metrics.NewSet()
	s.m.set = set
	s.m.puts = set.NewCounter("framerecv_store_puts_total")
	s.m.putErrors = set.NewCounter("framerecv_store_put_errors_total")
	s.m.duplicates = set.NewCounter("framerecv_store_duplicates_total")
	s.m.conflicts = set.NewCounter("framerecv_store_id_conflicts_total")
	s.m.outages = set.NewCounter("framerecv_store_outages_total")
	s.m.putTime = set.NewPrometheusHistogram("framerecv_store_put_seconds")
	s.m.streamed = set.NewCounter("framerecv_store_streamed_puts_total")
	s.m.streamFallbacks = set.NewCounter("framerecv_store_stream_fallbacks_total")
	set.NewGauge("framerecv_store_ready", func() float64 {
		if s.Ready() == nil {
			return 1
		}
		return 0
	})
	set.NewGauge("framerecv_store_memory_bytes", func() float64 { return float64(s.inflight.Load()) })
	set.NewGauge("framerecv_store_memory_budget_bytes", func() float64 { return float64(s.budget) })
}

// WritePrometheus writes the store's metrics (receiver.PrometheusWriter).
func (s *Store) WritePrometheus(w io.Writer) { s.m.set.WritePrometheus(w) }

// Bucket and Prefix are where frames go.
func (s *Store) Bucket() string { return s.bucket }
func (s *Store) Prefix() string { return s.prefix }

// Instance is this receiver's name in metadata and keys.
func (s *Store) Instance() string { return s.instance }

func (s *Store) String() string {
	u := "s3://" + s.bucket
	if s.prefix != "" {
		u += "/" + s.prefix
	}
	return u + " at " + s.endpoint
}

// Close stops the background probe.
func (s *Store) Close() {
	s.mu.Lock()
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// startupCheck: the bucket exists, and a probe object can be written and
// deleted with these credentials.
func (s *Store) startupCheck(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*s.timeout)
	defer cancel()
	ok, err := s.c.BucketExists(ctx, s.bucket)
	if err != nil {
		return s.explain("cannot check bucket "+strconv.Quote(s.bucket), err)
	}
	if !ok {
		// A HEAD answer has no body: 404 may also be an unknown access
		// key. A PUT's error body says which.
		if err := s.probe(ctx); err != nil && minio.ToErrorResponse(err).Code != "NoSuchBucket" {
			return s.explain("bucket "+strconv.Quote(s.bucket)+" is not usable", err)
		}
		return fmt.Errorf("bucket %q does not exist at %s: create it first (e.g. `aws s3 mb s3://%s` or `mc mb`), framerecv does not create buckets", s.bucket, s.endpoint, s.bucket)
	}
	if err := s.probe(ctx); err != nil {
		return s.explain("bucket "+strconv.Quote(s.bucket)+" is not writable", err)
	}
	return nil
}

// explain turns a client error into a start-up message that says what to
// check.
func (s *Store) explain(what string, err error) error {
	er := minio.ToErrorResponse(err)
	switch er.Code {
	case "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken", "InvalidClientTokenId",
		"XAdminUserNotFound": // versitygw's answer for an unknown access key
		return fmt.Errorf("%s at %s: the store refused the credentials (%s: %s): check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN or the credentials file, and the bucket policy", what, s.endpoint, er.Code, er.Message)
	case "NoSuchBucket":
		return fmt.Errorf("%s: bucket %q does not exist at %s: create it first", what, s.bucket, s.endpoint)
	}
	if er.StatusCode == http.StatusForbidden {
		return fmt.Errorf("%s at %s: access denied (HTTP 403): check the credentials and the bucket policy", what, s.endpoint)
	}
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) {
		return fmt.Errorf("%s: the TLS certificate of %s is not trusted: %v (give its CA with --s3-ca FILE or SSL_CERT_FILE; TLS is always verified)", what, s.endpoint, certErr.Err)
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: cannot reach the store at %s: %w (check --s3-endpoint and that the store runs)", what, s.endpoint, err)
	}
	return fmt.Errorf("%s at %s: %w", what, s.endpoint, err)
}

func (s *Store) probeKey() string { return s.join(".framerecv", "probe-"+s.instance) }

// probe writes and deletes a small object: the store is up and accepts
// this instance's writes.
func (s *Store) probe(ctx context.Context) error {
	key := s.probeKey()
	body := []byte("framerecv write check " + s.instance)
	_, err := s.c.PutObject(ctx, s.bucket, key, bytes.NewReader(body), int64(len(body)),
		minio.PutObjectOptions{DisableMultipart: true, DisableContentSha256: true, ContentType: "text/plain",
			UserMetadata: map[string]string{"x-amz-checksum-crc32c": crc32cB64(crc32.Checksum(body, castagnoli))}})
	if err != nil {
		return err
	}
	return s.c.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{})
}

// Ready is nil while the store accepts writes (receiver.Store).
func (s *Store) Ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down != nil {
		return fmt.Errorf("object store unusable since %s: %v", s.downAt.UTC().Format(time.RFC3339), s.down)
	}
	return nil
}

// markDown records an outage (logged once) and starts probing.
func (s *Store) markDown(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures++
	if s.down != nil {
		s.down = err
		return
	}
	s.down, s.downAt = err, time.Now()
	s.m.outages.Inc()
	s.log.Error("object store unusable: refusing new frames (ERR busy) until it answers again", "store", s.String(), "error", err.Error())
	if s.probing {
		return
	}
	select {
	case <-s.stop:
		return
	default:
	}
	s.probing = true
	s.wg.Add(1)
	go s.probeLoop()
}

func (s *Store) markUp() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down == nil {
		return
	}
	s.log.Info("object store usable again: taking frames", "store", s.String(),
		"down_for", time.Since(s.downAt).Round(time.Millisecond).String(), "failed_requests", s.failures)
	s.down, s.failures = nil, 0
}

func (s *Store) probeLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.probeEv)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		err := s.probe(ctx)
		cancel()
		s.mu.Lock()
		if err == nil {
			s.probing = false
			s.mu.Unlock()
			s.markUp()
			return
		}
		if s.down != nil {
			s.failures++
			s.down = err
		}
		s.mu.Unlock()
	}
}

// Begin reserves memory for one frame (receiver.Store).
func (s *Store) Begin(f receiver.Frame) (receiver.Upload, error) {
	if err := s.Ready(); err != nil {
		return nil, &receiver.Refusal{Reason: wire.ReasonBusy, Detail: "store unavailable",
			Msg: "refusing a frame before GOT SIZE: the object store is unusable", Err: err}
	}
	class, size := sizeClass(f.Size)
	for {
		cur := s.inflight.Load()
		if cur+size > s.budget {
			return nil, &receiver.Refusal{Reason: wire.ReasonBusy,
				Detail: fmt.Sprintf("memory in-flight=%d budget=%d", cur, s.budget),
				Msg:    fmt.Sprintf("refusing a %d-byte frame before GOT SIZE: %d of %d bytes of the memory budget are held by frames in flight", f.Size, cur, s.budget)}
		}
		if s.inflight.CompareAndSwap(cur, cur+size) {
			break
		}
	}
	var buf []byte
	if class >= 0 {
		if p, ok := s.pools[class].Get().(*[]byte); ok {
			buf = (*p)[:0]
		}
	}
	if buf == nil {
		buf = make([]byte, 0, size)
	}
	return &upload{s: s, f: f, buf: buf, class: class, size: size, eager: s.stream && streamable(f) && f.Size > 0}, nil
}

// sizeClass rounds small frames up to a power of two so buffers can be
// pooled; frames over 4 MiB get a buffer of their own size (class -1).
func sizeClass(n int64) (int, int64) {
	if n > 4<<20 {
		return -1, n
	}
	c := max(bits.Len64(uint64(n-1)), 16)
	return c, int64(1) << c
}

type upload struct {
	s      *Store
	f      receiver.Frame
	buf    []byte // the payload so far; cap >= f.Size, so append never moves it
	class  int
	size   int64
	eager  bool       // stream this frame (its checksum is announced)
	stream *streamPut // the PUT under way for a streamed frame, else nil
	done   bool
}

func (u *upload) Write(p []byte) (int, error) {
	if int64(len(u.buf)+len(p)) > u.f.Size {
		return 0, fmt.Errorf("payload longer than the announced %d bytes", u.f.Size)
	}
	u.buf = append(u.buf, p...)
	switch {
	case u.stream != nil:
		u.stream.body.arrived(len(u.buf))
	case u.eager && (len(u.buf) >= 8 || int64(len(u.buf)) == u.f.Size):
		u.startStream()
		u.stream.body.arrived(len(u.buf))
	}
	return len(p), nil
}

// Eager asks the receiver for the payload's bytes as they arrive rather
// than in full copy buffers (receiver.EagerUpload): a streamed frame
// passes them on to its PUT at once.
func (u *upload) Eager() bool { return u.eager }

func (u *upload) Close() {
	if u.done {
		return
	}
	u.done = true
	if u.stream != nil {
		// Not committed (or committed: then the PUT is over and this
		// returns at once). After it, no Read touches the buffer.
		u.abortStream()
	}
	if u.class >= 0 {
		b := u.buf[:0]
		u.s.pools[u.class].Put(&b)
	}
	u.buf = nil
	u.s.inflight.Add(-u.size)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc32cB64(v uint32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return base64.StdEncoding.EncodeToString(b[:])
}

func (s *Store) join(parts ...string) string {
	if s.prefix != "" {
		parts = append([]string{s.prefix}, parts...)
	}
	return strings.Join(parts, "/")
}

// Key is where a frame goes; idempotent reports whether a resend of the
// same frame lands on the same key.
func (s *Store) Key(f receiver.Frame, ext string, arrival time.Time, seq uint64) (key string, idempotent bool) {
	m := f.Meta
	if m.Name != "" && m.ID != "" && !m.Time.IsZero() {
		t := m.Time.UTC()
		return s.join(m.Name, t.Format("2006-01-02"), t.Format("15"), m.ID+"."+ext), true
	}
	t := arrival.UTC()
	name := t.Format("20060102T150405.000000000Z") + "-" + s.instance + "-" + strconv.FormatUint(seq, 10) + "." + ext
	return s.join(f.Client, t.Format("2006-01-02"), t.Format("15"), name), false
}

// arrival is a strictly increasing stamp within the process.
func (s *Store) arrival() time.Time {
	for {
		last := s.lastNS.Load()
		ns := max(time.Now().UnixNano(), last+1)
		if s.lastNS.CompareAndSwap(last, ns) {
			return time.Unix(0, ns)
		}
	}
}

func contentType(ext string) string {
	switch ext {
	case "jpg":
		return "image/jpeg"
	case "png":
		return "image/png"
	}
	return "application/octet-stream"
}

// Commit PUTs the frame as one object (receiver.Upload), or, for a
// streamed frame, completes the PUT already under way.
func (u *upload) Commit(ext string) (receiver.Committed, error) {
	if sp := u.stream; sp != nil {
		if ext == sp.ext {
			return u.commitStream(ext)
		}
		// Cannot happen (the same first bytes decide both), but if it
		// did the key would be wrong: drop the stream, PUT from memory.
		u.abortStream()
		u.stream = nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), u.s.timeout)
	defer cancel()
	return u.commitBuffered(ctx, ext)
}

// putRequest is the frame's key, checksum (as recorded in the metadata)
// and PUT options. payload is nil when the checksum was announced;
// otherwise it is the whole frame, and its CRC32C is computed.
func (u *upload) putRequest(ext string, payload []byte) (key, sum string, opts minio.PutObjectOptions) {
	s, f := u.s, u.f
	key, _ = s.Key(f, ext, s.arrival(), s.seq.Add(1))
	meta := map[string]string{
		"framepush-peer":     f.Peer,
		"framepush-receiver": s.instance,
		"framepush-client":   f.Client,
	}
	if f.Meta.Name != "" {
		meta["framepush-device"] = f.Meta.Name
	}
	if f.Meta.ID != "" {
		meta["framepush-id"] = f.Meta.ID
	}
	if !f.Meta.Time.IsZero() {
		meta["framepush-capture-time"] = f.Meta.Time.UTC().Format(time.RFC3339Nano)
	}
	// The checksum header makes the store verify the bytes it got. An
	// announced checksum was already verified against the payload, so
	// passing it on checks end to end, from the agent to the disk.
	switch {
	case f.Meta.HasSHA256:
		meta["x-amz-checksum-sha256"] = base64.StdEncoding.EncodeToString(f.Meta.SHA256[:])
		sum = "sha256:" + hex.EncodeToString(f.Meta.SHA256[:])
	case f.Meta.HasCRC32C:
		meta["x-amz-checksum-crc32c"] = crc32cB64(f.Meta.CRC32C)
		sum = fmt.Sprintf("crc32c:%08x", f.Meta.CRC32C)
	default:
		v := crc32.Checksum(payload, castagnoli)
		meta["x-amz-checksum-crc32c"] = crc32cB64(v)
		sum = fmt.Sprintf("crc32c:%08x", v)
	}
	meta["framepush-checksum"] = sum
	opts = minio.PutObjectOptions{
		ContentType:  contentType(ext),
		UserMetadata: meta,
		// One PUT with the size given: never multipart (no parts left
		// behind), and no -1 size (minio-go then buffers ~528 MiB).
		DisableMultipart: true,
		// The x-amz-checksum header covers the payload; signing its
		// SHA-256 too would hash every frame a second time.
		DisableContentSha256: true,
	}
	// The store refuses to overwrite: a resend is a duplicate, never a
	// second copy, and a key never changes under a reader.
	opts.SetMatchETagExcept("*")
	return key, sum, opts
}

// commitBuffered PUTs the frame from memory, now that all of it arrived.
func (u *upload) commitBuffered(ctx context.Context, ext string) (receiver.Committed, error) {
	s := u.s
	key, sum, opts := u.putRequest(ext, u.buf)
	began := time.Now()
	_, err := s.c.PutObject(ctx, s.bucket, key, bytes.NewReader(u.buf), int64(len(u.buf)), opts)
	s.m.putTime.UpdateDuration(began)
	return u.result(ctx, key, sum, ext, err)
}

// result turns the PUT's outcome into the frame's: stored, a duplicate or
// an id conflict (412), or a retryable refusal.
func (u *upload) result(ctx context.Context, key, sum, ext string, err error) (receiver.Committed, error) {
	s := u.s
	path := "s3://" + s.bucket + "/" + key
	if err == nil {
		s.m.puts.Inc()
		s.markUp()
		return receiver.Committed{Path: path, Payload: u.buf}, nil
	}
	er := minio.ToErrorResponse(err)
	if er.StatusCode == http.StatusPreconditionFailed || er.Code == "PreconditionFailed" {
		return u.duplicate(ctx, key, path, sum, ext)
	}
	s.m.putErrors.Inc()
	if unusable(err) {
		s.markDown(err)
	}
	return receiver.Committed{}, &receiver.Refusal{Reason: wire.ReasonInternal, Detail: "store: " + shortError(err),
		Msg: "object store did not confirm the frame", Err: fmt.Errorf("PUT %s: %w", path, err)}
}

// duplicate handles a PUT refused because the key exists: the same frame
// (same checksum) is acknowledged without a second copy; a different frame
// under the same name and id (two boards with one name?) is kept under a
// key of its own, so nothing is lost.
func (u *upload) duplicate(ctx context.Context, key, path, sum, ext string) (receiver.Committed, error) {
	s := u.s
	info, err := s.c.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		s.m.putErrors.Inc()
		return receiver.Committed{}, &receiver.Refusal{Reason: wire.ReasonInternal, Detail: "store: cannot check the existing object",
			Msg: "object exists, but it could not be read back to compare", Err: err}
	}
	if metaValue(info.UserMetadata, "framepush-checksum") == sum && info.Size == int64(len(u.buf)) {
		s.m.duplicates.Inc()
		s.log.Info("duplicate frame: already stored, acknowledged without a second copy",
			"key", key, "name", u.f.Meta.Name, "id", u.f.Meta.ID, "peer", u.f.Peer)
		return receiver.Committed{Path: path, Duplicate: true, Payload: u.buf}, nil
	}
	s.m.conflicts.Inc()
	alt := strings.TrimSuffix(key, "."+ext) + ".conflict-" + s.instance + "-" + strconv.FormatUint(s.seq.Add(1), 10) + "." + ext
	s.log.Warn("another frame with this name and id is already stored: keeping this one under its own key",
		"key", key, "stored_as", alt, "checksum", sum, "existing_checksum", metaValue(info.UserMetadata, "framepush-checksum"))
	opts := minio.PutObjectOptions{ContentType: contentType(ext), DisableMultipart: true, DisableContentSha256: true,
		UserMetadata: map[string]string{"framepush-checksum": sum, "framepush-receiver": s.instance, "framepush-peer": u.f.Peer,
			"framepush-device": u.f.Meta.Name, "framepush-id": u.f.Meta.ID, "x-amz-checksum-crc32c": crc32cB64(crc32.Checksum(u.buf, castagnoli))}}
	opts.SetMatchETagExcept("*")
	if _, err := s.c.PutObject(ctx, s.bucket, alt, bytes.NewReader(u.buf), int64(len(u.buf)), opts); err != nil {
		s.m.putErrors.Inc()
		return receiver.Committed{}, &receiver.Refusal{Reason: wire.ReasonInternal, Detail: "store: " + shortError(err),
			Msg: "object store did not confirm the frame", Err: err}
	}
	s.m.puts.Inc()
	return receiver.Committed{Path: "s3://" + s.bucket + "/" + alt, Payload: u.buf}, nil
}

func metaValue(m map[string]string, key string) string {
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return ""
}

// unusable: the failure is the store's or the link's, not this frame's, so
// new frames are refused until a probe succeeds.
func unusable(err error) bool {
	er := minio.ToErrorResponse(err)
	switch {
	case er.StatusCode >= 500, er.StatusCode == http.StatusForbidden, er.StatusCode == http.StatusNotFound,
		er.StatusCode == http.StatusTooManyRequests, er.Code == "SlowDown":
		return true
	case er.StatusCode != 0:
		return false
	}
	return true // no HTTP answer: refused, reset, timed out
}

// shortError is one line for the ERR answer: the S3 code, or the network
// error without the URL.
func shortError(err error) string {
	er := minio.ToErrorResponse(err)
	if er.Code != "" {
		return er.Code
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	s := err.Error()
	if len(s) > 120 {
		s = s[:120]
	}
	return strings.ReplaceAll(s, "\n", " ")
}

func x509SystemPool() (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		return nil, fmt.Errorf("system CA pool: %w", err)
	}
	return pool, nil
}
