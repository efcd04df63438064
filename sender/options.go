package sender

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"framepush/internal/backoff"
	"framepush/internal/netaddr"
	"framepush/wire"
)

// Mode says how many frames a connection carries.
type Mode string

const (
	// ModeAuto starts persistent and switches to one frame per
	// connection for an address whose server closes the connection after
	// its first GOT IMAGE (the original Python server does).
	ModeAuto Mode = "auto"
	// ModePersistent sends many frames on one connection and says
	// "BYE BYE " when the Sender is closed.
	ModePersistent Mode = "persistent"
	// ModeSeed sends one frame per connection: connect, SIZE, data,
	// "BYE BYE ", close, exactly like the seed client.
	ModeSeed Mode = "seed"
)

// ParseMode maps "auto", "persistent" and "seed" to a Mode ("" is auto).
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case "", ModeAuto:
		return ModeAuto, nil
	case ModePersistent, ModeSeed:
		return Mode(s), nil
	}
	return "", fmt.Errorf("unknown mode %q (want auto, persistent or seed)", s)
}

// Defaults applied by New to zero fields of Options.
const (
	DefaultConnectTimeout = 5 * time.Second
	DefaultAnswerTimeout  = 10 * time.Second
	DefaultMinThroughput  = 64 << 10
)

// Options configures a Sender. Only Addresses is required.
type Options struct {
	// Addresses are the receivers, HOST:PORT, in order of preference. A
	// Sender stays on an address while it works and moves to the next one
	// (wrapping around) when a connection to it fails.
	Addresses []string

	// SpreadKey, if set, picks the address tried first by a stable hash
	// of it (FNV-1a, modulo the number of addresses); failover then goes
	// on in order from there, wrapping around. Boards sharing one config
	// with their device name as the key spread evenly over the receivers.
	SpreadKey string

	// Mode is auto (the default), persistent or seed.
	Mode Mode

	// Terminator ends the SIZE line. The default, wire.TermNone, sends
	// the seed's exact bytes; wire.TermLF spares the receiver its settle
	// wait. With Extension the line is always terminated by LF or CRLF.
	Terminator wire.Terminator

	// Extension sends key=value tokens after the size on the SIZE line:
	// name (Name), id (the frame's Seq), ts (its capture time) and the
	// Checksum. The original server ignores them. Name and Checksum are
	// ignored without Extension.
	Extension bool
	Checksum  wire.Checksum
	Name      string

	// ConnectTimeout bounds a TCP connect plus TLS handshake, per address
	// (default 5 s).
	ConnectTimeout time.Duration

	// AnswerTimeout bounds the wait for each answer (GOT SIZE, GOT
	// IMAGE) and the write of each short message (default 10 s). The
	// receiver fsyncs before GOT IMAGE, so leave room for a slow disk.
	AnswerTimeout time.Duration

	// MinThroughput is the slowest payload rate tolerated, in bytes per
	// second (default 64 KiB/s): writing n payload bytes may take
	// AnswerTimeout + n/MinThroughput before the connection is given up,
	// so a server that stops reading cannot stall the Sender.
	MinThroughput int64

	// Backoff spaces reconnection attempts after failures (capped
	// exponential, full jitter); it restarts after a delivered frame.
	// The zero value selects backoff.Default.
	Backoff backoff.Policy

	// TLS, if set, wraps every connection in TLS (see TLSConfig). An
	// empty ServerName is filled from the address's host.
	TLS *tls.Config

	// Dial opens the TCP connection (default: a net.Dialer). Tests use it
	// to count or fail dials; the Sender bounds it by ConnectTimeout.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	// Logger receives connection events and failures (default: discarded).
	// Nothing is logged per delivered frame.
	Logger *slog.Logger
}

// withDefaults validates o and fills its zero fields.
func (o Options) withDefaults() (Options, error) {
	var errs []error
	if len(o.Addresses) == 0 {
		errs = append(errs, errors.New("no server address (want at least one HOST:PORT)"))
	}
	for _, a := range o.Addresses {
		if err := checkAddr(a); err != nil {
			errs = append(errs, err)
		}
	}
	mode, err := ParseMode(string(o.Mode))
	if err != nil {
		errs = append(errs, err)
	}
	o.Mode = mode
	if o.Terminator < wire.TermNone || o.Terminator > wire.TermCRLF {
		errs = append(errs, fmt.Errorf("unknown terminator %d", o.Terminator))
	}
	if o.Checksum < wire.ChecksumNone || o.Checksum > wire.ChecksumSHA256 {
		errs = append(errs, fmt.Errorf("unknown checksum %d", o.Checksum))
	}
	if o.Extension && o.Name != "" && !wire.ValidToken(o.Name) {
		errs = append(errs, fmt.Errorf("name %q is not a valid token (want 1-128 of A-Z a-z 0-9 . _ : + -)", o.Name))
	}
	if o.ConnectTimeout < 0 || o.AnswerTimeout < 0 {
		errs = append(errs, fmt.Errorf("timeouts must not be negative (connect %v, answer %v)", o.ConnectTimeout, o.AnswerTimeout))
	}
	if o.MinThroughput < 0 {
		errs = append(errs, fmt.Errorf("min throughput %d B/s is negative", o.MinThroughput))
	}
	if o.Backoff.Initial < 0 || o.Backoff.Max < 0 || o.Backoff.Multiplier < 0 {
		errs = append(errs, fmt.Errorf("backoff must not be negative (%+v)", o.Backoff))
	}
	if len(errs) > 0 {
		return o, fmt.Errorf("sender: bad options: %w", errors.Join(errs...))
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.AnswerTimeout == 0 {
		o.AnswerTimeout = DefaultAnswerTimeout
	}
	if o.MinThroughput == 0 {
		o.MinThroughput = DefaultMinThroughput
	}
	if o.Backoff == (backoff.Policy{}) {
		o.Backoff = backoff.Default
	}
	if o.Dial == nil {
		var d net.Dialer
		o.Dial = d.DialContext
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if !o.Extension {
		o.Name, o.Checksum = "", wire.ChecksumNone
	}
	o.Addresses = append([]string(nil), o.Addresses...)
	if o.SpreadKey != "" && len(o.Addresses) > 1 {
		k := int(fnv1a(o.SpreadKey) % uint32(len(o.Addresses)))
		o.Addresses = append(append(make([]string, 0, len(o.Addresses)), o.Addresses[k:]...), o.Addresses[:k]...)
	}
	return o, nil
}

// checkAddr applies the rule config validation applies to
// server.addresses, so that a checked configuration always starts.
func checkAddr(a string) error {
	if err := netaddr.CheckDial(a); err != nil {
		return fmt.Errorf("server address %w", err)
	}
	return nil
}

// dataTimeout is how long writing n payload bytes may take.
func (o *Options) dataTimeout(n int64) time.Duration {
	secs := float64(n) / float64(o.MinThroughput)
	if secs > 86400 { // no sane frame takes a day; also keeps Duration from overflowing
		secs = 86400
	}
	return o.AnswerTimeout + time.Duration(secs*float64(time.Second))
}

// fnv1a is the 32-bit FNV-1a hash of s, written out so that the agent
// links no hash package for four lines of arithmetic.
func fnv1a(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}
