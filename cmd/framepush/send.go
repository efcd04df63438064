package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"framepush/config"
	"framepush/frame"
	"framepush/internal/backoff"
	"framepush/sender"
	"framepush/wire"
)

const sendUsage = `Usage:
  framepush send [flags] FILE...

Sends each FILE as one frame, in order, over the SIZE / GOT SIZE / GOT IMAGE
handshake: the seed client's job, with timeouts, retries and failover. It
prints one line per file delivered and exits 0 only when every file was
acknowledged with GOT IMAGE; 1 when any was not (each failure says why);
2 for a usage error. A file the server refuses for good (too large, ...)
is not retried, and one it refuses after its payload (ERR checksum, ERR
internal, ...) is tried 5 times; either way the others go on. When the
server cannot be reached for --retry-for, the remaining files are not tried.
Only regular files of at most --max-size are read (64MiB, framerecv's
default limit): a FIFO, a device such as /dev/zero or a directory is refused
unread, naming its kind. SIGTERM or SIGINT stops the run; a second one ends
it at once.

Examples:
  # To framerecv on this machine (start one with: framerecv --dir ./frames)
  framepush send photo.jpg
  #   sent photo.jpg (48213 bytes) to 127.0.0.1:7400 in 3.1ms

  # A folder of snapshots to a LAN server, falling back to a second one
  framepush send --server 192.168.1.10:7400 --server 192.168.1.11:7400 snaps/*.jpg

  # To the original Python server from the seed article, unchanged. The
  # default bytes are the seed client's ("SIZE <n>", no terminator). That
  # server takes one image per connection: auto mode (the default) notices
  # and reconnects for each file; --mode seed does so from the start. It
  # also cuts images above 126,976 bytes and stalls on ones of 4096 bytes or
  # less (it waits for more data), so keep to sizes in between with it.
  python2 server.py &                       # listening on, say, port 6666
  framepush send --server 127.0.0.1:6666 --mode seed image.png

  # Metadata for framerecv: device name, frame id, mtime and a SHA-256 the
  # receiver verifies before it answers GOT IMAGE (filed under DIR/porch/)
  framepush send --extension --name porch --checksum sha256 a.jpg b.jpg

  # Over a slow link to framerecv, files are pipelined (the default
  # --window 64: sent before their answers come back); --window 0 waits for
  # each answer, like the seed client
  framepush send --server far.example:7400 --window 128 snaps/*.jpg

  # TLS with a client certificate (mTLS), giving up after 10 s of retrying
  framepush send --server recv.example:7443 --tls-ca ca.pem \
      --tls-cert cam.pem --tls-key cam.key --retry-for 10s img.jpg

Flags:
`

// sendFlags are the settings of one framepush send run.
type sendFlags struct {
	servers       []string
	mode          string
	terminator    string
	extension     bool
	checksum      string
	name          string
	timeout       time.Duration
	retryFor      time.Duration
	minThroughput string
	tls           bool
	tlsCA         string
	tlsCert       string
	tlsKey        string
	tlsServerName string
	tlsInsecure   bool
	verbose       bool
	window        int
	windowBytes   string
	connections   int
	maxSize       int64 // from --max-size
	maxSizeText   string
}

// addrList is a repeatable --server flag.
type addrList []string

func (a *addrList) String() string     { return strings.Join(*a, ",") }
func (a *addrList) Set(v string) error { *a = append(*a, v); return nil }

func runSend(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("framepush send", flag.ContinueOnError)
	flags.SetOutput(stderr)
	var f sendFlags
	var servers addrList
	defaultServer := fmt.Sprintf("127.0.0.1:%d", config.DefaultPort)
	flags.Var(&servers, "server", "receiver `HOST:PORT`; repeat for failover, tried in order (default "+defaultServer+")")
	flags.StringVar(&f.mode, "mode", "auto", "frames per connection: `auto` (persistent, one per connection if the server closes after each), persistent or seed")
	flags.StringVar(&f.terminator, "terminator", "none", "SIZE line ending: `none` (the seed's bytes), lf or crlf (the receiver need not wait for the number to end)")
	flags.BoolVar(&f.extension, "extension", false, "send name, id, ts (file mtime) and checksum tokens on the SIZE line (the original server ignores them)")
	flags.StringVar(&f.checksum, "checksum", "sha256", "payload checksum with --extension: `sha256`, crc32c or none")
	flags.StringVar(&f.name, "name", "", "device `NAME` with --extension (framerecv files frames under DIR/NAME/)")
	flags.DurationVar(&f.timeout, "timeout", 10*time.Second, "limit for connecting and for each answer (`DURATION`)")
	flags.DurationVar(&f.retryFor, "retry-for", 20*time.Second, "keep retrying a file for up to `DURATION` with backoff; 0 tries each file once")
	flags.StringVar(&f.minThroughput, "min-throughput", "64KiB", "slowest payload rate in `BYTES` per second before a write times out")
	flags.BoolVar(&f.tls, "tls", false, "use TLS, verifying the server against the system's CAs (implied by the other --tls-* flags)")
	flags.StringVar(&f.tlsCA, "tls-ca", "", "PEM `FILE` of CAs that sign the server's certificate")
	flags.StringVar(&f.tlsCert, "tls-cert", "", "client certificate PEM `FILE` for mTLS (needs --tls-key)")
	flags.StringVar(&f.tlsKey, "tls-key", "", "client key PEM `FILE` for --tls-cert")
	flags.StringVar(&f.tlsServerName, "tls-server-name", "", "`NAME` to verify in the server's certificate (default: the host of --server)")
	flags.BoolVar(&f.tlsInsecure, "tls-insecure", false, "do not verify the server's certificate (testing only)")
	flags.IntVar(&f.window, "window", sender.DefaultWindowFrames, "pipelining: up to `N` files sent before their answers come back, with a receiver that grants it\n(framerecv does; others get stop-and-wait); 0 or 1: always stop-and-wait")
	flags.StringVar(&f.windowBytes, "window-bytes", "8MiB", "with --window: at most `BYTES` of files sent but not yet answered")
	flags.IntVar(&f.connections, "connections", 1, "with a receiver that does not pipeline: up to `N` connections, one file in flight on each\n(the order in which the receiver stores the files is then not guaranteed)")
	flags.StringVar(&f.maxSizeText, "max-size", fmt.Sprintf("%dMiB", defaultSendMaxSize>>20), "largest file sent, in `BYTES` (framerecv's default --max-frame-size); larger files and non-regular ones (FIFOs, devices) are refused unread")
	flags.BoolVar(&f.verbose, "verbose", false, "log connections and retries to stderr")
	flags.Usage = func() {} // errors get a hint below; --help the whole text on stdout
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			flags.SetOutput(stdout)
			fmt.Fprint(stdout, sendUsage)
			flags.PrintDefaults()
			return 0
		}
		fmt.Fprintln(stderr, `Run "framepush send --help" for usage and examples.`)
		return 2
	}
	set := map[string]bool{}
	flags.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	f.servers = servers
	if len(f.servers) == 0 {
		f.servers = []string{defaultServer}
	}
	files := flags.Args()
	opt, err := f.options(set, files)
	if err != nil {
		fmt.Fprintf(stderr, "framepush send: %v\nRun \"framepush send --help\" for usage and examples.\n", err)
		return 2
	}
	if f.verbose {
		opt.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, err := sender.New(opt)
	if err != nil { // a bad --server
		fmt.Fprintf(stderr, "framepush send: %v\nRun \"framepush send --help\" for usage and examples.\n", err)
		return 2
	}
	var failed int
	if s.Windowed() {
		failed = sendFilesWindowed(ctx, s, files, f.retryFor, f.maxSize, stdout, stderr)
	} else {
		failed = sendFiles(ctx, s, files, f.retryFor, f.maxSize, stdout, stderr)
	}
	cctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	_ = s.Close(cctx) // BYE BYE; every file's fate is already known
	if failed > 0 {
		if len(files) > 1 {
			fmt.Fprintf(stderr, "framepush send: %d of %d files not delivered\n", failed, len(files))
		}
		return 1
	}
	return 0
}

// options checks the flags and turns them into sender options.
func (f *sendFlags) options(set map[string]bool, files []string) (sender.Options, error) {
	var o sender.Options
	if len(files) == 0 {
		return o, errors.New("no FILE to send")
	}
	mode, err := sender.ParseMode(f.mode)
	if err != nil {
		return o, fmt.Errorf("--mode: %v", err)
	}
	term, err := wire.ParseTerminator(f.terminator)
	if err != nil {
		return o, fmt.Errorf("--terminator: %v", err)
	}
	sum, err := wire.ParseChecksum(f.checksum)
	if err != nil {
		return o, fmt.Errorf("--checksum: %v", err)
	}
	if !f.extension && (set["name"] || set["checksum"]) {
		return o, errors.New("--name and --checksum travel in the SIZE line extension: add --extension")
	}
	if f.extension && f.name != "" && !wire.ValidToken(f.name) {
		return o, fmt.Errorf("--name %q: want 1-128 of A-Z a-z 0-9 . _ : + -", f.name)
	}
	if f.timeout <= 0 {
		return o, fmt.Errorf("--timeout %v: want a positive duration such as 10s", f.timeout)
	}
	if f.retryFor < 0 {
		return o, fmt.Errorf("--retry-for %v: want 0 (one attempt) or a positive duration", f.retryFor)
	}
	rate, err := config.ParseByteSize(f.minThroughput)
	if err != nil || rate <= 0 {
		return o, fmt.Errorf("--min-throughput %q: want a positive byte count such as 64KiB", f.minThroughput)
	}
	if f.window < 0 || f.window > wire.MaxWindow {
		return o, fmt.Errorf("--window %d: want 0 to %d frames (0 or 1: stop-and-wait)", f.window, wire.MaxWindow)
	}
	winBytes, err := config.ParseByteSize(f.windowBytes)
	if err != nil || winBytes <= 0 {
		return o, fmt.Errorf("--window-bytes %q: want a positive byte count such as 8MiB", f.windowBytes)
	}
	if f.connections < 0 || f.connections > 64 {
		return o, fmt.Errorf("--connections %d: want 1 to 64", f.connections)
	}
	maxSize, err := config.ParseByteSize(f.maxSizeText)
	if err != nil || maxSize <= 0 {
		return o, fmt.Errorf("--max-size %q: want a positive byte count such as 64MiB", f.maxSizeText)
	}
	f.maxSize = int64(maxSize)
	o = sender.Options{
		Connections:    f.connections,
		Window:         sender.Window{Frames: f.window, Bytes: int64(winBytes)},
		Addresses:      f.servers,
		Mode:           mode,
		Terminator:     term,
		Extension:      f.extension,
		Checksum:       sum,
		Name:           f.name,
		ConnectTimeout: f.timeout,
		AnswerTimeout:  f.timeout,
		MinThroughput:  int64(rate),
		Backoff:        backoff.Policy{Initial: 200 * time.Millisecond, Max: 5 * time.Second, Multiplier: 2},
	}
	if f.tls || f.tlsCA != "" || f.tlsCert != "" || f.tlsKey != "" || f.tlsServerName != "" || f.tlsInsecure {
		o.TLS, err = sender.TLSConfig(f.tlsCA, f.tlsCert, f.tlsKey, f.tlsServerName, f.tlsInsecure)
		if err != nil {
			return o, err
		}
	}
	return o, nil
}

// sendRefusals bounds the attempts of a file the server refuses after its
// payload (ERR checksum, ERR internal, ...: sender.RefusedAfterPayload),
// like the agent's queue.max_attempts default: the server is there, so the
// next files are tried instead of retrying this one for all of --retry-for.
const sendRefusals = 5

// sendFiles sends files in order, reports each, and returns how many were
// not delivered. A file refused for good, or refused after its payload
// sendRefusals times, is reported and the next file is tried. Once a file
// could not be delivered within retryFor for any other reason (no
// connection, timeouts), the server is taken for unreachable and the
// remaining files are not tried.
func sendFiles(ctx context.Context, s *sender.Sender, files []string, retryFor time.Duration, maxSize int64, stdout, stderr io.Writer) int {
	failed := 0
	for i, file := range files {
		if ctx.Err() != nil {
			fmt.Fprintf(stderr, "framepush send: interrupted: %d files not sent\n", len(files)-i)
			return failed + len(files) - i
		}
		fr, err := readFrame(file, uint64(i+1), maxSize)
		if err != nil {
			fmt.Fprintf(stderr, "framepush send: %v\n", err)
			failed++
			continue
		}
		start := time.Now()
		refusals, err := sendOne(ctx, s, file, fr, retryFor, stderr)
		switch {
		case err == nil:
			st := s.Stats()
			fmt.Fprintf(stdout, "sent %s (%d bytes) to %s in %v\n", file, len(fr.Data), st.Address, roundDuration(time.Since(start)))
		case sender.IsPermanent(err):
			fmt.Fprintf(stderr, "framepush send: %s: refused, not retried: %v\n", file, err)
			failed++
		case refusals > 0 && ctx.Err() == nil:
			fmt.Fprintf(stderr, "framepush send: %s: refused after its payload %d times, not delivered: %v\n", file, refusals, err)
			failed++
		default:
			fmt.Fprintf(stderr, "framepush send: %s: not delivered: %v\n", file, err)
			failed++
			if rest := len(files) - i - 1; rest > 0 {
				why := "giving up"
				if ctx.Err() != nil {
					why = "interrupted"
				}
				fmt.Fprintf(stderr, "framepush send: %s: %d remaining files not sent\n", why, rest)
				return failed + rest
			}
		}
	}
	return failed
}

// sendOne delivers fr, retrying failures for up to retryFor (a refusal
// after the payload at most sendRefusals times in all). It returns the
// number of refusals after the payload and the last error.
func sendOne(ctx context.Context, s *sender.Sender, file string, fr frame.Frame, retryFor time.Duration, stderr io.Writer) (int, error) {
	err := s.Send(ctx, fr)
	refusals := 0
	var rctx context.Context
	for err != nil && !sender.IsPermanent(err) && ctx.Err() == nil {
		if _, ok := sender.RefusedAfterPayload(err); ok {
			refusals++
		}
		if refusals >= sendRefusals || retryFor <= 0 {
			return refusals, err
		}
		if rctx == nil {
			fmt.Fprintf(stderr, "framepush send: %s: %v; retrying for up to %v\n", file, err, retryFor)
			var cancel context.CancelFunc
			rctx, cancel = context.WithTimeout(ctx, retryFor)
			defer cancel()
		}
		last := err
		if err = s.Send(rctx, fr); err != nil && rctx.Err() != nil && ctx.Err() == nil {
			return refusals, fmt.Errorf("%w (gave up after %v)", last, retryFor)
		}
	}
	return refusals, err
}

// formatOf names an image format from its magic bytes.
func formatOf(b []byte) frame.Format {
	switch {
	case bytes.HasPrefix(b, []byte{0xFF, 0xD8, 0xFF}):
		return frame.JPEG
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return frame.PNG
	}
	return frame.Bin
}

// roundDuration keeps three significant digits or so for humans.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
