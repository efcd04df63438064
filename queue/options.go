package queue

import (
	"fmt"
	"log/slog"
	"time"

	"framepush/frame"
)

// DropPolicy says which frame to lose when the queue is full.
type DropPolicy string

const (
	// DropOldest drops the oldest queued frame to make room: the operator
	// gets the latest picture of what is happening now.
	DropOldest DropPolicy = "oldest"
	// DropNewest refuses the incoming frame: the beginning of an event,
	// which explains the rest, is kept.
	DropNewest DropPolicy = "newest"
)

// Defaults, chosen for a Raspberry Pi (Zero to 5) with an SD card. A
// 1920×1080 JPEG is 200–500 KiB.
const (
	// DefaultMemoryFrames holds half a second at 30 fps: enough to ride
	// out a slow GOT IMAGE without touching the card.
	DefaultMemoryFrames = 16
	// DefaultMemoryBytes is 8 MiB: sixteen large 1080p frames, and small
	// enough for the agent's 15 MiB RSS target on a 512 MiB Pi Zero.
	DefaultMemoryBytes = 8 << 20
	// DefaultSpoolMaxBytes is 512 MiB: one to two thousand 1080p frames,
	// a small slice of even an 8 GB card, leaving room for the OS and logs.
	DefaultSpoolMaxBytes = 512 << 20
	// DefaultSpoolMaxFrames is 10 000 files: a directory size ext4 lists
	// quickly, so opening the spool after a reboot (one header read per
	// file) takes seconds, not minutes, even on a slow card.
	DefaultSpoolMaxFrames = 10000
)

// Options configure a Queue. The zero value is a memory-only queue with the
// defaults above; every zero numeric field takes its default.
//
// Durability trade-off. By default a frame touches the card only when it
// must (memory full or link down), so a healthy link causes no writes at
// all; the price is that frames still in memory when power is cut (at most
// MemoryFrames, typically under a second of video) are lost. SIGTERM and
// SIGINT lose nothing: Close writes them to the spool. AlwaysSpool closes
// that window by writing and fsyncing every frame before Put returns, which
// costs two flushes per frame and wears the card: at 1 fps of 300 KiB
// frames that is 25 GiB a day, at 30 fps 750 GiB a day, which consumer SD
// cards rated for a few tens of TB written do not survive for long. Use it
// for rare, precious frames (GPIO-triggered) or on industrial cards/SSDs.
type Options struct {
	// MemoryFrames and MemoryBytes bound the frames held in RAM (payload
	// bytes). Defaults DefaultMemoryFrames and DefaultMemoryBytes.
	MemoryFrames int
	MemoryBytes  int64

	// SpoolDir is the directory for frames that do not stay in memory.
	// Empty means memory only: when memory is full, frames are dropped.
	// The directory is created (mode 0750) and locked; one agent per
	// directory.
	SpoolDir string
	// SpoolMaxBytes and SpoolMaxFrames bound the spool (payload bytes; each
	// file adds a header of about 50 bytes plus the Source, Format and
	// Trigger strings, and the filesystem rounds files up to its block
	// size). Defaults DefaultSpoolMaxBytes and DefaultSpoolMaxFrames.
	SpoolMaxBytes  int64
	SpoolMaxFrames int

	// MaxAge drops frames older than this (by capture time, at the next
	// Put, Next, Ack, Nack or Refused, or on the queue's timer when
	// nothing moves; never under the sender while in flight). 0 keeps
	// frames until delivered or pushed out.
	// A board without a real-time clock may jump forward when NTP syncs;
	// frames stamped before the jump then look old.
	MaxAge time.Duration

	// Drop is the policy when full; "" means DropOldest.
	Drop DropPolicy
	// NoTriggerPriority drops frames in plain policy order. By default a
	// victim is chosen among untriggered frames ("continuous", "interval")
	// first, and triggered ones (see Triggered) go only when nothing else
	// can make room.
	NoTriggerPriority bool

	// AlwaysSpool writes every frame to the spool (and fsyncs it, unless
	// NoFsync) before Put returns, so that it survives a power cut; see
	// the trade-off above. Requires SpoolDir. Memory then only caches
	// frames to spare reading them back.
	AlwaysSpool bool
	// NoFsync skips fsync of spool files and the directory. Spooled frames
	// then survive a crash of the agent but not a power cut; use it only on
	// storage whose writes are already safe (battery-backed) or when card
	// wear matters more than those frames.
	NoFsync bool

	// MaxAttempts is how many refusals after the payload (see Refused) a
	// frame gets before it is moved to the dead-letter folder, or dropped
	// as "dead-letter" without a spool. 0 means DefaultMaxAttempts;
	// negative means unlimited (a poison frame then blocks the queue).
	MaxAttempts int

	// Now is the clock for ages; nil means time.Now. Tests inject one.
	Now func() time.Time
	// Logger receives drop and spool messages; nil means slog.Default().
	Logger *slog.Logger
}

// WithDefaults returns o with every unset field given its default, as the
// queue will use it; config check prints this.
func (o Options) WithDefaults() Options {
	if o.MemoryFrames == 0 {
		o.MemoryFrames = DefaultMemoryFrames
	}
	if o.MemoryBytes == 0 {
		o.MemoryBytes = DefaultMemoryBytes
	}
	if o.SpoolMaxBytes == 0 {
		o.SpoolMaxBytes = DefaultSpoolMaxBytes
	}
	if o.SpoolMaxFrames == 0 {
		o.SpoolMaxFrames = DefaultSpoolMaxFrames
	}
	if o.Drop == "" {
		o.Drop = DropOldest
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	return o
}

// Validate reports the first option out of range, naming the allowed values.
func (o Options) Validate() error {
	o = o.WithDefaults()
	switch {
	case o.MemoryFrames < 0:
		return fmt.Errorf("queue: MemoryFrames is %d; it must be positive (default %d)", o.MemoryFrames, DefaultMemoryFrames)
	case o.MemoryBytes < 0:
		return fmt.Errorf("queue: MemoryBytes is %d; it must be positive (default %d)", o.MemoryBytes, DefaultMemoryBytes)
	case o.SpoolMaxBytes < 0:
		return fmt.Errorf("queue: SpoolMaxBytes is %d; it must be positive (default %d)", o.SpoolMaxBytes, DefaultSpoolMaxBytes)
	case o.SpoolMaxFrames < 0:
		return fmt.Errorf("queue: SpoolMaxFrames is %d; it must be positive (default %d)", o.SpoolMaxFrames, DefaultSpoolMaxFrames)
	case o.MaxAge < 0:
		return fmt.Errorf("queue: MaxAge is %v; it must be 0 (keep forever) or positive", o.MaxAge)
	case o.Drop != DropOldest && o.Drop != DropNewest:
		return fmt.Errorf("queue: drop policy %q is unknown; use %q or %q", o.Drop, DropOldest, DropNewest)
	case o.AlwaysSpool && o.SpoolDir == "":
		return fmt.Errorf("queue: AlwaysSpool needs a SpoolDir to write frames to")
	}
	return nil
}

// Triggered reports whether frames with this Trigger are kept ahead of
// others when the queue is full: GPIO and signal events, and the
// pre-trigger frames captured for them.
func Triggered(trigger frame.TriggerKind) bool { return trigger.Event() }
