// Command framerecv is the reference framepush receiver: it accepts frames
// over the SIZE / GOT SIZE / GOT IMAGE handshake from framepush agents or
// the original Python client, and stores each one durably before
// acknowledging it. Run `framerecv --help` for examples.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"framepush/internal/bytesize"
	"framepush/internal/logging"
	"framepush/internal/version"
	"framepush/receiver"
	s3store "framepush/store/s3"
	"framepush/wire"
)

const usage = `framerecv receives frames over the SIZE / GOT SIZE / GOT IMAGE handshake
and stores each one durably (written, fsynced, renamed) before it answers
GOT IMAGE. Frames land in

  DIR/<client>/<YYYY-MM-DD>/<UTC time with ns>-<seq>.<jpg|png|bin>

where <client> is the sender's name= (framepush agents send it) or its IP,
and the date and time are the frame's capture time when the sender gives
one (the extension's ts=, also set as the file's mtime), else its arrival.

With --store s3://BUCKET[/PREFIX] frames go to an S3-compatible object
store instead (AWS S3, MinIO, Ceph RGW, SeaweedFS, Garage, versitygw), one
atomic PUT each, checksum verified by the store, GOT IMAGE only after the
store confirmed it, under

  PREFIX/<name>/<YYYY-MM-DD>/<HH>/<id>.<jpg|png|bin>

from the capture time (frames with name=, id= and ts=; a resend is a
duplicate, not a second copy); other frames under
PREFIX/<client>/<date>/<HH>/<arrival>-<instance>-<seq>.<ext>. Credentials
and region come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_SESSION_TOKEN, AWS_REGION (or ~/.aws/credentials, AWS_PROFILE). Run
any number of instances on one bucket: see docs/FLEET.md.

Usage:
  framerecv [flags]

Examples:
  # Receive from framepush agents, or from the original Python client
  # unchanged (it sends "SIZE <n>" with no terminator; framerecv waits
  # --settle for the number to end):
  framerecv --listen :7400 --dir /var/lib/framerecv

  # One frame by hand, speaking the seed client's exact bytes from bash:
  exec 3<>/dev/tcp/127.0.0.1/7400
  printf 'SIZE 5' >&3; head -c 8 <&3; echo     # GOT SIZE
  printf 'hello'  >&3; head -c 9 <&3; echo     # GOT IMAGE
  printf 'BYE BYE ' >&3; exec 3>&-

  # TLS, requiring client certificates signed by your agents' CA (mTLS),
  # with Prometheus metrics and a health check on localhost:
  framerecv --listen :7443 --dir /srv/frames \
      --tls-cert server.crt --tls-key server.key --tls-client-ca agents-ca.crt \
      --http 127.0.0.1:7402
  curl http://127.0.0.1:7402/metrics; curl http://127.0.0.1:7402/healthz

  # Into a MinIO bucket, with /readyz for the load balancer:
  AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... \
  framerecv --store s3://frames/site1 --s3-endpoint https://minio.lan:9000 \
      --http :7402

  # See the frames: a page with one live tile per device, each device's
  # newest frame and an MJPEG stream (VLC, browsers, Home Assistant):
  framerecv --dir /srv/frames --http 127.0.0.1:7402
  #   http://127.0.0.1:7402/                          the page
  #   http://127.0.0.1:7402/devices/NAME/latest.jpg   newest frame
  #   http://127.0.0.1:7402/devices/NAME/stream.mjpg  MJPEG stream
  #   http://127.0.0.1:7402/api/devices               state as JSON
  # Beyond loopback, credentials are required (or --http-insecure):
  framerecv --http :7402 --http-token-file /etc/framerecv/token \
      --http-tls-cert web.crt --http-tls-key web.key

  # Home Assistant over MQTT (discovery: each device appears as a camera,
  # a "last frame" sensor and an "online" sensor):
  framerecv --mqtt tcp://homeassistant.local:1883 --mqtt-user framerecv \
      --mqtt-password-file /etc/framerecv/mqtt-password

  # A slow link and big frames: allow 256 MiB frames at >= 4 KiB/s:
  framerecv --max-frame-size 256MiB --min-rate 4KiB

SIGTERM or SIGINT stops accepting, lets frames in flight finish (up to
--shutdown-timeout) and exits 0. Refusals are answered "ERR <reason> ..."
and logged with the peer, the reason and the offending bytes.

Flags:
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// sizeFlag is a byte count flag accepting 65536, 512KiB, 64MiB, 1GiB.
type sizeFlag struct{ v *int64 }

func (f sizeFlag) String() string {
	if f.v == nil {
		return ""
	}
	return bytesize.Size(*f.v).String()
}

func (f sizeFlag) Set(s string) error {
	n, err := bytesize.Parse(s)
	if err != nil {
		return err
	}
	*f.v = int64(n)
	return nil
}

type settings struct {
	listen, dir, store, httpAddr      string
	s3Endpoint, s3Instance, s3CA      string
	s3Timeout                         time.Duration
	s3Memory                          int64
	s3Buffered                        bool
	fsync                             bool
	maxFrame, minRate, minFree        int64
	maxConns, maxConnsPerPeer         int
	maxWindow                         int
	handshake, idle, settle, shutdown time.Duration
	tlsCert, tlsKey, tlsClientCA      string
	logFormat, logLevel               string
	showVersion                       bool
	view                              viewSettings // the page, streams and MQTT (view.go)
}

func parseFlags(args []string, stdout io.Writer) (*settings, error) {
	s := &settings{
		maxFrame: receiver.DefaultMaxFrameSize,
		minRate:  receiver.DefaultMinRate,
		minFree:  receiver.DefaultMinFreeBytes,
		s3Memory: s3store.DefaultMemoryBudget,
	}
	fs := flag.NewFlagSet("framerecv", flag.ContinueOnError)
	// Parse errors are reported by run in one line; the full usage is
	// for --help only.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&s.listen, "listen", ":7400", "TCP `HOST:PORT` to accept frames on")
	fs.StringVar(&s.dir, "dir", "./frames", "`DIR` frames are stored under (created if missing); same as --store DIR")
	fs.StringVar(&s.store, "store", "", "`DIR|s3://BUCKET[/PREFIX]` where frames go: a folder, or an S3 bucket and key prefix (default: --dir)")
	fs.StringVar(&s.s3Endpoint, "s3-endpoint", "", "S3 endpoint `URL` for --store s3://..., e.g. http://127.0.0.1:9000 (omit for AWS S3); https is verified")
	fs.DurationVar(&s.s3Timeout, "s3-timeout", s3store.DefaultTimeout, "bound on one PUT once the frame's last byte arrived (a streamed PUT already runs while it arrives): keep it below the agents' server.answer_timeout (10s)")
	fs.Var(sizeFlag{&s.s3Memory}, "s3-memory", "memory budget in `BYTES` for frames in flight to S3: each holds its whole payload until its PUT returned, streamed or not (at least --max-frame-size; nothing spills to disk); when full, new frames get ERR busy before GOT SIZE")
	fs.BoolVar(&s.s3Buffered, "s3-buffered", false, "PUT each frame only once all of it arrived; by default a frame whose checksum the agent announced\n(server.checksum) streams into its PUT while it arrives, which overlaps the two")
	fs.StringVar(&s.s3Instance, "s3-instance", "", "this receiver's `NAME` in object metadata and in keys of frames without id (default: host name + random suffix)")
	fs.StringVar(&s.s3CA, "s3-ca", "", "PEM `FILE` of extra CAs for verifying the store's TLS certificate")
	fs.BoolVar(&s.fsync, "fsync", true, "fsync each frame and its folder before GOT IMAGE; --fsync=false is faster but UNSAFE:\nan acknowledged frame can be lost on power loss")
	fs.Var(sizeFlag{&s.maxFrame}, "max-frame-size", "largest frame accepted, in `BYTES` or with a unit (512KiB, 64MiB); larger ones are refused with ERR too-large")
	fs.IntVar(&s.maxConns, "max-conns", receiver.DefaultMaxConns, "concurrent connections; more are refused with ERR busy")
	fs.IntVar(&s.maxConnsPerPeer, "max-conns-per-peer", 0, "at most `N` concurrent connections from one remote IP, so that one address cannot take\nevery --max-conns slot; more are refused with ERR busy max-per-peer=<n> (retryable).\n0 means max(16, --max-conns/8) (32 by default); -1 turns the limit off.\nDevices behind one NAT share one IP: set it to at least their number")
	fs.DurationVar(&s.handshake, "handshake-timeout", receiver.DefaultHandshakeTimeout, "time a client has to complete a SIZE line (and a TLS handshake)")
	fs.DurationVar(&s.idle, "idle-timeout", receiver.DefaultIdleTimeout, "how long a persistent connection may wait between frames")
	fs.Var(sizeFlag{&s.minRate}, "min-rate", "slowest payload rate accepted, in `BYTES` per second (slowloris guard; e.g. 16KiB)")
	fs.Var(sizeFlag{&s.minFree}, "min-free", "free-disk floor in `BYTES`: refuse frames with ERR disk-full rather than go below it; 0 disables")
	fs.DurationVar(&s.settle, "settle", wire.DefaultSettle, "silence that ends an unterminated \"SIZE <n>\" (the seed client's bytes)")
	fs.IntVar(&s.maxWindow, "max-window", receiver.DefaultMaxWindow, "largest pipelining window granted: a framepush sender that asks (window= on its SIZE line)\nmay have up to `N` frames sent but not yet answered; 0 turns pipelining off (the token is ignored)")
	fs.DurationVar(&s.shutdown, "shutdown-timeout", 20*time.Second, "on SIGTERM, how long frames in flight may take to finish")
	fs.StringVar(&s.tlsCert, "tls-cert", "", "serve TLS with this PEM certificate `FILE` (needs --tls-key)")
	fs.StringVar(&s.tlsKey, "tls-key", "", "PEM private key `FILE` for --tls-cert")
	fs.StringVar(&s.tlsClientCA, "tls-client-ca", "", "require client certificates signed by the CAs in this PEM `FILE` (mTLS)")
	fs.StringVar(&s.httpAddr, "http", "", "serve /metrics (Prometheus), /healthz and /readyz (503 while the store is unusable) on this `HOST:PORT`, e.g. 127.0.0.1:7402 (default off)")
	fs.StringVar(&s.logFormat, "log-format", "text", "log `FORMAT`: text or json")
	fs.StringVar(&s.logLevel, "log-level", "info", "log `LEVEL`: debug, info, warn or error")
	fs.BoolVar(&s.showVersion, "version", false, "print the version and exit")
	addViewFlags(fs, &s.view)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fmt.Fprint(stdout, usage)
			fs.PrintDefaults()
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (framerecv takes only flags; see --help)", fs.Arg(0))
	}
	switch {
	case s.maxFrame <= 0:
		return nil, fmt.Errorf("--max-frame-size must be at least 1 byte (e.g. 64MiB)")
	case s.minRate <= 0:
		return nil, fmt.Errorf("--min-rate must be at least 1 byte per second (e.g. 16KiB)")
	case s.s3Timeout <= 0:
		return nil, fmt.Errorf("--s3-timeout must be a positive duration (e.g. 5s)")
	case s.s3Memory <= 0:
		return nil, fmt.Errorf("--s3-memory must be at least 1 byte (e.g. 256MiB)")
	case s.maxConns <= 0:
		return nil, fmt.Errorf("--max-conns %d: want at least 1", s.maxConns)
	case s.maxConnsPerPeer < -1:
		return nil, fmt.Errorf("--max-conns-per-peer %d: want at least 1, 0 for the default or -1 for no per-peer limit", s.maxConnsPerPeer)
	case s.handshake <= 0 || s.idle <= 0 || s.settle <= 0 || s.shutdown <= 0:
		return nil, fmt.Errorf("--handshake-timeout, --idle-timeout, --settle and --shutdown-timeout must be positive durations (e.g. 10s, 2m, 5ms)")
	case (s.tlsCert == "") != (s.tlsKey == ""):
		return nil, fmt.Errorf("--tls-cert and --tls-key go together: give both or neither")
	case s.tlsClientCA != "" && s.tlsCert == "":
		return nil, fmt.Errorf("--tls-client-ca needs --tls-cert and --tls-key: mTLS runs over TLS")
	}
	if s.store == "" {
		s.store = s.dir
	}
	if s.isS3() {
		if _, _, err := s3store.ParseURL(s.store); err != nil {
			return nil, fmt.Errorf("--store: %v", err)
		}
		if s.s3Memory < s.maxFrame {
			return nil, fmt.Errorf("--s3-memory %s is below --max-frame-size %s: a frame that large could never be held", bytesize.Size(s.s3Memory), bytesize.Size(s.maxFrame))
		}
	} else if s.s3Endpoint != "" {
		return nil, fmt.Errorf("--s3-endpoint needs --store s3://BUCKET[/PREFIX]")
	}
	if err := s.view.check(s.httpAddr); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *settings) isS3() bool { return strings.HasPrefix(s.store, "s3://") }

// folder is the frame folder, "" with an object store.
func (s *settings) folder() string {
	if s.isS3() {
		return ""
	}
	return s.store
}

// loadCAFlag reads the PEM certificates of the file given to --flag.
func loadCAFlag(flag, file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("cannot read --%s: %w", flag, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--%s %s holds no PEM certificate", flag, file)
	}
	return pool, nil
}

// tlsConfig loads the certificate, key and client CAs, if configured.
func (s *settings) tlsConfig() (*tls.Config, error) {
	if s.tlsCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(s.tlsCert, s.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("cannot load --tls-cert %s / --tls-key %s: %w", s.tlsCert, s.tlsKey, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if s.tlsClientCA != "" {
		pool, err := loadCAFlag("tls-client-ca", s.tlsClientCA)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	s, err := parseFlags(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "framerecv: %v\nRun 'framerecv --help' for usage and examples.\n", err)
		return 2
	}
	if s.showVersion {
		fmt.Fprintln(stdout, version.String("framerecv"))
		return 0
	}
	log, err := logging.New(stderr, s.logFormat, s.logLevel)
	if err != nil {
		fmt.Fprintln(stderr, "framerecv:", err)
		return 2
	}
	tlsCfg, err := s.tlsConfig()
	if err != nil {
		log.Error("cannot start", "error", err)
		return 1
	}
	minFree := s.minFree
	if minFree == 0 {
		minFree = -1 // the flag's 0 means off; the library's 0 means default
	}
	httpTLS, err := s.view.httpTLS()
	if err != nil {
		log.Error("cannot start", "error", err)
		return 1
	}
	log.Info("framerecv starting", "version", version.String("framerecv"))
	var store receiver.Store
	if s.isS3() {
		st, err := s3store.New(ctx, s3store.Config{
			URL: s.store, Endpoint: s.s3Endpoint, CAFile: s.s3CA, Timeout: s.s3Timeout,
			MemoryBudget: s.s3Memory, MaxFrameSize: s.maxFrame, Instance: s.s3Instance,
			MaxConns: s.maxConns, Logger: log, Buffered: s.s3Buffered,
		})
		if err != nil {
			log.Error("cannot start: object store check failed", "store", s.store, "error", err)
			return 1
		}
		defer st.Close()
		if s.s3Timeout >= 10*time.Second {
			log.Warn("--s3-timeout is not below the agents' default answer timeout (10s): a slow store may make agents time out instead of getting a retryable ERR",
				"s3_timeout", s.s3Timeout)
		}
		log.Info("object store ready", "store", st.String(), "instance", st.Instance(),
			"put_timeout", s.s3Timeout, "memory_budget", s.s3Memory, "streaming", !s.s3Buffered)
		store = st
	}
	vw, err := s.view.start(s.httpAddr != "", log)
	if err != nil {
		log.Error("cannot start", "error", err)
		return 1
	}
	defer vw.close()
	srv, err := receiver.New(receiver.Options{
		Store:            store,
		Dir:              s.folder(),
		NoFsync:          !s.fsync,
		MaxFrameSize:     s.maxFrame,
		MaxConns:         s.maxConns,
		MaxConnsPerPeer:  s.maxConnsPerPeer,
		HandshakeTimeout: s.handshake,
		IdleTimeout:      s.idle,
		MinRate:          s.minRate,
		MinFreeBytes:     minFree,
		Settle:           s.settle,
		MaxWindow:        maxWindowOption(s.maxWindow),
		TLS:              tlsCfg,
		Logger:           log,
		KeepData:         s.view.keepData(vw),
		OnFrame:          vw.onFrame(),
	})
	if err != nil {
		log.Error("cannot start", "error", err)
		return 1
	}
	if !s.fsync && !s.isS3() {
		log.Warn("fsync is off: an acknowledged frame can be lost on power loss (--fsync=false)")
	}
	l, err := net.Listen("tcp", s.listen)
	if err != nil {
		log.Error("cannot listen", "listen", s.listen, "error", err)
		return 1
	}
	var hs *http.Server
	if s.httpAddr != "" {
		hl, err := net.Listen("tcp", s.httpAddr)
		if err != nil {
			l.Close()
			log.Error("cannot listen for metrics", "http", s.httpAddr, "error", err)
			return 1
		}
		h, err := vw.handler(&s.view, srv.Handler())
		if err != nil {
			l.Close()
			hl.Close()
			log.Error("cannot start", "error", err)
			return 1
		}
		hs = &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute, TLSConfig: httpTLS}
		base := s.view.scheme() + "://" + hl.Addr().String()
		log.Info("metrics and health check", "url", base+"/metrics", "readyz", base+"/readyz")
		log.Info("web page: one live tile per device", "url", base+"/",
			"still", base+"/devices/<name>/latest.jpg", "stream", base+"/devices/<name>/stream.mjpg", "api", base+"/api/devices")
		go func() {
			if err := serve(hs, hl); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics listener failed", "error", err)
			}
		}()
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	select {
	case err := <-served:
		log.Error("receiver stopped", "error", err)
		return 1
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing frames in flight", "timeout", s.shutdown)
	sctx, cancel := context.WithTimeout(context.Background(), s.shutdown)
	defer cancel()
	code := 0
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown timed out; frames in flight were not acknowledged and will be resent", "error", err)
	}
	if hs != nil {
		vw.stopStreams()
		_ = hs.Shutdown(sctx)
	}
	if err := <-served; err != nil && !errors.Is(err, receiver.ErrServerClosed) {
		log.Error("receiver stopped", "error", err)
		code = 1
	}
	st := srv.Stats()
	log.Info("stopped", slog.Uint64("frames", st.Frames), slog.Uint64("bytes", st.Bytes), slog.Any("rejects", st.Rejects))
	return code
}

// maxWindowOption maps --max-window (0: off) to receiver.Options.MaxWindow
// (0: the default, negative: off).
func maxWindowOption(n int) int {
	if n <= 0 {
		return -1
	}
	return n
}
