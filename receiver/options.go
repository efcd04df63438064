package receiver

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"framepush/internal/logging"
	"framepush/wire"
)

// Defaults applied by New to zero fields of Options.
const (
	DefaultMaxFrameSize     = 64 << 20
	DefaultMaxConns         = 256
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultIdleTimeout      = 2 * time.Minute
	DefaultMinRate          = 16 << 10
	DefaultMinFreeBytes     = 256 << 20
	DefaultKeepDataInFlight = 64 << 20
)

// Options configures a Server. Every field but Dir (or Store) has a
// default that a zero value selects.
type Options struct {
	// Dir is the folder frames are stored under; New creates it if
	// missing and removes temporary files a crash left in it. Ignored
	// when Store is set.
	Dir string

	// Store, if set, keeps the frames instead of the folder Dir (for
	// example the S3 store of package framepush/store/s3). NoFsync and
	// MinFreeBytes apply to the folder only.
	Store Store

	// NoFsync skips the fsync of each file and of its folder before
	// GOT IMAGE. The default (false) makes an ack mean the frame is on
	// disk. Setting it is unsafe: after a power loss or kernel crash an
	// acknowledged frame may be missing (a crash of the receiver process
	// alone still loses nothing, and no partial file ever appears under a
	// final name either way).
	NoFsync bool

	// MaxFrameSize is the largest frame accepted, in bytes (default
	// 64 MiB). A larger SIZE is answered "ERR too-large max=<n>" before
	// anything is allocated or created.
	MaxFrameSize int64

	// MaxConns bounds concurrent connections (default 256). A connection
	// over it is answered "ERR busy max=<n>" and closed.
	MaxConns int

	// MaxConnsPerPeer bounds the connections one remote IP may hold at
	// once, so that one address re-opening idle connections cannot take
	// every MaxConns slot and lock the others out. A connection over it
	// is answered "ERR busy max-per-peer=<n>" (retryable, like MaxConns)
	// and counted as "busy-peer". Zero selects max(16, MaxConns/8), at
	// most MaxConns (32 with the default MaxConns); negative disables it.
	// Devices behind one NAT share one IP: set it to at least their
	// number (each framepush agent holds one connection).
	MaxConnsPerPeer int

	// HandshakeTimeout is how long a client has to complete a request
	// line, counted from the connection's start for the first one and
	// from its first byte for later ones (default 10 s). It also bounds
	// the TLS handshake and each answer write.
	HandshakeTimeout time.Duration

	// IdleTimeout is how long a persistent connection may stay silent
	// between frames before it is closed (default 2 min).
	IdleTimeout time.Duration

	// MinRate is the slowest payload rate accepted, in bytes per second
	// (default 16 KiB/s): each 64 KiB of payload must arrive within
	// 64 KiB/MinRate plus a grace of min(1 s, HandshakeTimeout), which
	// stops a slowloris client from holding a connection slot forever.
	MinRate int64

	// MinFreeBytes is the free-disk floor on Dir's file system (default
	// 256 MiB). A frame that would leave less free space, counting frames
	// still in flight, is refused with "ERR disk-full". Negative disables
	// the check.
	MinFreeBytes int64

	// Settle is the wire settle window for unterminated SIZE lines
	// (default wire.DefaultSettle).
	Settle time.Duration

	// TLS, if set, makes the server speak TLS only. Set ClientAuth and
	// ClientCAs in it for mutual TLS.
	TLS *tls.Config

	// Logger receives the server's logs (default: discarded).
	Logger *slog.Logger

	// OnFrame, if set, is called for each stored frame once it is durable
	// and before GOT IMAGE is sent. It runs on the connection's goroutine,
	// so it must be quick; tests and tools use it.
	OnFrame func(Stored)

	// KeepData, if positive, makes the receiver hand each stored frame's
	// payload to OnFrame in Stored.Data when the frame is at most KeepData
	// bytes (larger frames come with Data nil). Zero keeps no payload.
	KeepData int64

	// KeepDataInFlight bounds the payload bytes held for Stored.Data by
	// all frames being received at once (default 64 MiB, and at least
	// KeepData); a frame that would go over it comes with Data nil.
	KeepDataInFlight int64
}

// Stored describes a frame that was stored.
type Stored struct {
	Path     string        // final file path (s3://bucket/key for the S3 store)
	Size     int64         // payload bytes
	Peer     string        // remote address, host:port
	Client   string        // folder under Dir: the extension's name, else the peer IP
	Meta     wire.Meta     // extension tokens sent with the frame, if any
	Duration time.Duration // from the SIZE request to the frame being durable
	Stamp    time.Time     // when the frame became durable (not the capture time the file may be named after)

	// Data is the payload, set only with Options.KeepData and a frame of
	// at most that size. It is a fresh slice per frame that the receiver
	// never touches again: OnFrame owns it and may keep it and share it
	// with other goroutines, but none of them may modify it.
	Data []byte

	// Duplicate: the store already held this frame (same name and id, a
	// resend after a lost GOT IMAGE); nothing new was written.
	Duplicate bool
}

// withDefaults validates o and fills its zero fields.
func (o Options) withDefaults() (Options, error) {
	if o.Dir == "" && o.Store == nil {
		return o, errors.New("receiver: Options.Dir is empty: give the folder frames are stored under")
	}
	if o.MaxFrameSize == 0 {
		o.MaxFrameSize = DefaultMaxFrameSize
	}
	if o.MaxConns == 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.MaxConnsPerPeer == 0 {
		o.MaxConnsPerPeer = min(max(16, o.MaxConns/8), o.MaxConns)
	}
	if o.HandshakeTimeout == 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.MinRate == 0 {
		o.MinRate = DefaultMinRate
	}
	if o.MinFreeBytes == 0 {
		o.MinFreeBytes = DefaultMinFreeBytes
	}
	if o.Settle == 0 {
		o.Settle = wire.DefaultSettle
	}
	if o.Logger == nil {
		o.Logger = logging.Discard
	}
	if o.KeepData > 0 {
		if o.KeepDataInFlight == 0 {
			o.KeepDataInFlight = DefaultKeepDataInFlight
		}
		o.KeepDataInFlight = max(o.KeepDataInFlight, o.KeepData)
	}
	var errs []error
	if o.MaxFrameSize < 0 {
		errs = append(errs, fmt.Errorf("max frame size %d is negative (want a byte count, 0 for the default %d)", o.MaxFrameSize, DefaultMaxFrameSize))
	}
	if o.MaxConns < 0 {
		errs = append(errs, fmt.Errorf("max conns %d is negative (want at least 1, 0 for the default %d)", o.MaxConns, DefaultMaxConns))
	}
	if o.HandshakeTimeout < 0 || o.IdleTimeout < 0 || o.Settle < 0 {
		errs = append(errs, fmt.Errorf("timeouts must not be negative (handshake %v, idle %v, settle %v)", o.HandshakeTimeout, o.IdleTimeout, o.Settle))
	}
	if o.MinRate < 0 {
		errs = append(errs, fmt.Errorf("min rate %d B/s is negative (want bytes per second, 0 for the default %d)", o.MinRate, DefaultMinRate))
	}
	if o.TLS != nil && len(o.TLS.Certificates) == 0 && o.TLS.GetCertificate == nil && o.TLS.GetConfigForClient == nil {
		errs = append(errs, errors.New("TLS config has no certificate (set Certificates or GetCertificate)"))
	}
	if len(errs) > 0 {
		return o, fmt.Errorf("receiver: bad options: %w", errors.Join(errs...))
	}
	return o, nil
}

// rateGrace is the slack added to each payload chunk's deadline, so that
// a short network hiccup is not taken for a slowloris.
func (o *Options) rateGrace() time.Duration { return min(time.Second, o.HandshakeTimeout) }
