// Package queue is the store-and-forward buffer between capture and the
// sender:
//
//	trigger → capture → queue → sender → receiver → store
//
// Frames live in one of two tiers. While the link is up and memory has room
// they stay in RAM and the SD card is never written. When memory is full or
// the link is down (SetLinkUp(false)), frames spill to the spool: one file
// per frame, written as temp file + fsync + rename + directory fsync, with a
// checksummed header, so that after a crash or power cut every file is
// either a complete frame or recognisably damaged.
//
// Delivery is at-least-once. Next hands out the oldest frame without
// removing it; Ack removes it (and its file) once the receiver answered
// GOT IMAGE; Nack puts it back at the head. After a restart the spooled
// frames come first, in capture order, then the new ones.
//
// The queue is bounded by frames, bytes and age, separately for memory and
// spool. When full it drops by an explicit policy (oldest or newest),
// sparing GPIO-triggered frames while untriggered ones can go instead; one
// policy serves every path that makes room (policy.go). Frames past their
// age expire where frames move and on a timer (expiry.go). Every drop is
// logged and counted by reason (see Stats, which only reads). WaitEmpty
// blocks until everything queued is gone (wait.go).
//
// Producers may call Put concurrently; one consumer calls Next/Ack/Nack.
package queue

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"framepush/frame"
)

// Drop reasons: the keys of Stats.Dropped.
const (
	ReasonFullOldest = "full-oldest" // queue full under DropOldest
	ReasonFullNewest = "full-newest" // queue full under DropNewest
	ReasonExpired    = "expired"     // older than MaxAge
	ReasonTooLarge   = "too-large"   // one frame above the limits
	ReasonCorrupt    = "corrupt"     // spool file damaged (torn write, bad card)
	ReasonMissing    = "missing"     // spool file deleted behind the queue's back
	ReasonSpoolError = "spool-error" // spool write failed and memory was full
	ReasonShutdown   = "shutdown"    // still in memory at Close and nowhere to spool it
	ReasonDeadLetter = "dead-letter" // refused MaxAttempts times, and no spool to keep it in
)

// DropReasons lists every reason, so that metrics can be registered at zero.
var DropReasons = []string{
	ReasonFullOldest, ReasonFullNewest, ReasonExpired, ReasonTooLarge,
	ReasonCorrupt, ReasonMissing, ReasonSpoolError, ReasonShutdown, ReasonDeadLetter,
}

var (
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("queue closed")
	// ErrTooLarge refuses a frame bigger than the memory or spool byte
	// limit: it could never be queued.
	ErrTooLarge = errors.New("frame larger than the queue limits")
	// ErrDropped says Put did not keep the frame (queue full under the
	// drop policy, already expired, or spool failure); the drop is
	// already logged and counted, the caller need not do either.
	ErrDropped = errors.New("frame dropped")
	// ErrNotDurable says an AlwaysSpool Put could not write the frame to
	// the spool; it is queued in memory only.
	ErrNotDurable = errors.New("frame kept in memory only, spool write failed")
)

// Item is a frame handed out by Next, to be settled by Ack or Nack.
type Item struct {
	// Frame is the frame; its Data is shared with the queue and must not
	// be modified.
	Frame frame.Frame
	// Attempts counts how often this frame was handed out in this
	// process, 1 the first time.
	Attempts int
	// ID is the frame's id for the wire, "<run>-<seq>", unique for the
	// device across restarts (see RunToken).
	ID string
	e  *entry
}

// Stats is a snapshot of the queue, for metrics.
type Stats struct {
	Pending      int   // frames queued, in memory or spool (or both), in flight included
	InFlight     int   // handed out by Next, not yet settled
	MemoryFrames int   // frames held in RAM
	MemoryBytes  int64 // their payload bytes
	SpoolFrames  int   // spool files (being written included)
	SpoolBytes   int64 // their payload bytes

	Enqueued    uint64 // frames accepted by Put
	Delivered   uint64 // frames acked
	Retried     uint64 // Nacks
	Spooled     uint64 // spool files written
	Recovered   uint64 // frames found in the spool at Open
	SpoolErrors uint64 // failed spool writes, reads and deletes

	// Dropped counts lost frames by reason; every reason in DropReasons
	// is present.
	Dropped map[string]uint64
	// OldestAge is the age of the oldest pending frame by capture time;
	// 0 when empty.
	OldestAge time.Duration
	// LinkUp is the last state given to SetLinkUp.
	LinkUp bool

	// DeadLettered counts frames moved to the dead-letter folder by this
	// process; DeadLetters is how many files that folder holds now.
	DeadLettered uint64
	DeadLetters  int
	// RunID is this process's run, the <run> of new frame ids.
	RunID string
}

// entry is one queued frame and where it lives.
type entry struct {
	run, n    uint64 // capture order: run of the process, position in the run
	frame     frame.Frame
	size      int64
	triggered bool   // kept ahead of others when dropping
	file      string // spool file name, set while spooled

	resident bool // Data held and counted against memory limits
	spooled  bool // counted against spool limits: file exists or is being written
	writing  bool // a write is in progress outside the lock; Data is held until it ends
	out      bool // handed out by Next
	gone     bool // removed from the queue; a pending write deletes its file
	attempts int

	refusals    int    // refusals after the payload, counted by Refused
	lastRefusal string // the receiver's last such answer
}

// hasData reports whether frame.Data is in memory.
func (e *entry) hasData() bool { return e.resident || e.writing }

type tier uint8

const (
	tierMemory tier = iota
	tierSpool
)

// Tier preferences for new frames, in order of preference.
var (
	tiersLinkUp   = []tier{tierMemory, tierSpool}
	tiersLinkDown = []tier{tierSpool, tierMemory} // memory still beats dropping
	tiersMemory   = []tier{tierMemory}
	tiersSpool    = []tier{tierSpool}
)

// Queue is the store-and-forward queue. Create it with Open.
type Queue struct {
	opt      Options
	pol      policy // which frame goes when full (policy.go)
	log      *slog.Logger
	now      func() time.Time
	sp       *spool // nil: memory only
	maxFrame int64  // largest payload accepted

	io sync.WaitGroup // spool writes and deletes running outside mu

	mu       sync.Mutex
	items    []*entry // capture order
	run      uint64   // this process's run number (see runid.go)
	runTag   string
	next     uint64
	linkUp   bool
	closed   bool
	wake     chan struct{} // closed when a waiting Next may proceed
	changed  chan struct{} // closed when a frame leaves or is settled (wait.go)
	memN     int
	memBytes int64
	spN      int
	spBytes  int64

	enqueued, delivered, retried, spooledN, recovered, spoolErrors uint64
	dropped                                                        map[string]uint64
	dropLogs                                                       map[string]*dropLog

	dead deadState

	expiry   *time.Timer // expires frames while nothing moves (expiry.go)
	expiryAt time.Time   // when expiry fires, by q.now; zero: not armed
}

// Open validates o, opens (and recovers) the spool if one is configured, and
// returns the queue with the link considered up.
func Open(o Options) (*Queue, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.WithDefaults()
	q := &Queue{
		opt:      o,
		pol:      policy{drop: o.Drop, noPriority: o.NoTriggerPriority},
		log:      o.Logger,
		now:      o.Now,
		run:      1,
		next:     1,
		linkUp:   true,
		dropped:  make(map[string]uint64, len(DropReasons)),
		dropLogs: make(map[string]*dropLog),
	}
	if q.log == nil {
		q.log = slog.Default()
	}
	if q.now == nil {
		q.now = time.Now
	}
	for _, r := range DropReasons {
		q.dropped[r] = 0
	}
	q.maxFrame = o.MemoryBytes
	q.runTag = newRunTag() // memory only: nothing to count runs in
	if o.SpoolDir != "" {
		q.maxFrame = min(q.maxFrame, o.SpoolMaxBytes)
		if err := q.recover(); err != nil {
			return nil, err
		}
	}
	q.expireDue() // recovered frames past MaxAge, and the timer for the rest
	return q, nil
}

// recover opens the spool and queues the frames found there.
func (q *Queue) recover() error {
	sp, sc, err := openSpool(q.opt.SpoolDir, !q.opt.NoFsync)
	if err != nil {
		return err
	}
	q.sp = sp
	if sc.temps > 0 {
		q.log.Info("queue: removed unfinished spool writes left by a crash", "dir", q.opt.SpoolDir, "files", sc.temps)
	}
	if len(sc.unknown) > 0 {
		q.log.Warn("queue: spool directory holds files that are not frames; leaving them alone",
			"dir", q.opt.SpoolDir, "files", sc.unknown)
	}
	for _, b := range sc.corrupt {
		q.dropped[ReasonCorrupt]++
		q.log.Warn("queue: frame dropped", "reason", ReasonCorrupt, "file", b.name, "why", b.reason,
			"quarantine", q.opt.SpoolDir+"/"+quarantineDir)
	}
	tag, last, ok, err := readRunState(q.opt.SpoolDir)
	if err != nil {
		q.log.Warn("queue: run state damaged; starting a new run tag (frame ids stay unique)", "err", err)
	}
	if !ok {
		tag = newRunTag()
	}
	q.runTag = tag
	for _, f := range sc.frames {
		e := &entry{
			run: f.run, n: f.n, frame: f.h.meta, size: f.h.dataLen, file: f.name,
			triggered: !q.opt.NoTriggerPriority && Triggered(f.h.meta.Trigger),
		}
		q.setSpooled(e, true)
		q.items = append(q.items, e)
		q.run = max(q.run, f.run+1)
	}
	q.recovered = uint64(len(sc.frames))
	q.run = max(q.run, last+1)
	if err := writeRunState(q.opt.SpoolDir, q.runTag, q.run); err != nil {
		sp.close()
		return err
	}
	if err := q.openDead(); err != nil {
		sp.close()
		return err
	}
	// The limits may have been lowered since these files were written.
	victims := q.planLocked(need{tiers: tiersSpool}).victims
	for _, name := range q.evictLocked(victims, nil) {
		if err := q.sp.remove(name); err != nil {
			q.spoolErrors++
			q.log.Error("queue: cannot delete dropped spool file", "err", err)
		}
	}
	if len(sc.frames) > 0 {
		q.log.Info("queue: recovered spooled frames, sending them first", "dir", q.opt.SpoolDir,
			"frames", q.spN, "bytes", q.spBytes, "dropped_over_limit", len(victims))
	}
	return nil
}

// Put queues f. It takes ownership of f.Data, which must not be modified
// afterwards. Put blocks while the frame is written when it goes to the
// spool (memory full, link down, or AlwaysSpool).
//
// A nil error means the frame is queued (and, under AlwaysSpool, durable).
// Otherwise the error wraps ErrDropped, ErrTooLarge, ErrNotDurable (still
// queued) or ErrClosed.
func (q *Queue) Put(f frame.Frame) error {
	if err := checkMeta(&f); err != nil {
		if errors.Is(err, ErrTooLarge) {
			q.mu.Lock()
			q.dropLocked(&entry{frame: f, size: int64(len(f.Data))}, ReasonTooLarge)
			q.mu.Unlock()
		}
		return err
	}
	size := int64(len(f.Data))
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return fmt.Errorf("queue: put frame seq %d: %w", f.Seq, ErrClosed)
	}
	now := q.now()
	if f.Time.IsZero() {
		f.Time = now // a frame without capture time ages from its arrival
	}
	del := q.expireLocked(now, nil)
	e := &entry{run: q.run, n: q.next, frame: f, size: size,
		triggered: !q.opt.NoTriggerPriority && Triggered(f.Trigger)}
	var err error
	switch {
	case size > q.maxFrame:
		q.dropLocked(e, ReasonTooLarge)
		err = fmt.Errorf("queue: frame seq %d is %d bytes, more than the %d the queue holds (%s); "+
			"raise that limit or lower the resolution or JPEG quality: %w", f.Seq, size, q.maxFrame, q.limitName(), ErrTooLarge)
	case q.expired(f.Time, now):
		q.dropLocked(e, ReasonExpired)
		err = fmt.Errorf("queue: frame seq %d captured %v ago, beyond MaxAge %v: %w", f.Seq, now.Sub(f.Time), q.opt.MaxAge, ErrDropped)
	default:
		err = q.placeLocked(e, &del)
	}
	if err == nil {
		q.next++
		q.items = append(q.items, e)
		q.enqueued++
		q.wakeLocked()
		q.armForLocked(e)
	}
	write, name := err == nil && e.writing, e.file
	if write {
		q.io.Add(1)
	}
	q.startIOLocked(del)
	q.mu.Unlock()
	q.removeFiles(del)
	if !write {
		return err
	}
	werr := q.sp.write(name, &f)
	for werr != nil && isNoSpace(werr) && q.evictForSpace(e) {
		werr = q.sp.write(name, &f) // the file system is smaller than the spool limits
	}
	kept := q.finishWrite(e, name, false, werr)
	switch {
	case kept == keptDurable:
		return nil
	case kept == keptDropped:
		return fmt.Errorf("queue: frame seq %d: spool write failed and memory is full: %w", f.Seq, ErrDropped)
	case q.opt.AlwaysSpool:
		return fmt.Errorf("queue: frame seq %d: %w", f.Seq, ErrNotDurable)
	}
	return nil
}

func (q *Queue) limitName() string {
	if q.sp != nil && q.opt.SpoolMaxBytes < q.opt.MemoryBytes {
		return "SpoolMaxBytes"
	}
	return "MemoryBytes"
}

// placeLocked decides where e goes, dropping frames per policy to make
// room. On success e is accounted and, if it goes to the spool, marked
// writing with its file name set.
func (q *Queue) placeLocked(e *entry, del *[]string) error {
	pl := q.planLocked(need{cand: e, tiers: q.tiersLocked(), frames: 1, bytes: e.size})
	if !pl.ok {
		q.dropLocked(e, q.pol.reason())
		return fmt.Errorf("queue: frame seq %d (%s) refused, queue full under drop policy %q: %w",
			e.frame.Seq, e.frame.Trigger, q.opt.Drop, ErrDropped)
	}
	*del = q.evictLocked(pl.victims, *del)
	if pl.tier == tierMemory {
		q.setResident(e, true)
		return nil
	}
	e.file = fileName(e.run, e.n, e.frame.Time)
	e.writing = true
	q.setSpooled(e, true)
	if q.opt.AlwaysSpool && q.memN < q.opt.MemoryFrames && q.memBytes+e.size <= q.opt.MemoryBytes {
		q.setResident(e, true) // cache: spares reading it back
	}
	return nil
}

func (q *Queue) tiersLocked() []tier {
	switch {
	case q.opt.AlwaysSpool:
		return tiersSpool
	case q.sp == nil:
		return tiersMemory
	case q.linkUp:
		return tiersLinkUp
	}
	return tiersLinkDown
}

// removeLocked takes e out of the queue and its accounting.
func (q *Queue) removeLocked(e *entry) {
	for i, x := range q.items {
		if x != e {
			continue
		}
		switch {
		case len(q.items) == 1:
			// Emptied: keep the slot, so that a steady Put/Next/Ack
			// never reallocates.
			q.items[0] = nil
			q.items = q.items[:0]
		case i == 0:
			q.items[0] = nil
			q.items = q.items[1:]
		default:
			copy(q.items[i:], q.items[i+1:])
			q.items[len(q.items)-1] = nil
			q.items = q.items[:len(q.items)-1]
		}
		break
	}
	e.gone = true
	q.unaccount(e)
	q.changedLocked()
}

func (q *Queue) unaccount(e *entry) {
	q.setResident(e, false)
	q.setSpooled(e, false)
}

func (q *Queue) setResident(e *entry, on bool) {
	if e.resident == on {
		return
	}
	e.resident = on
	if on {
		q.memN, q.memBytes = q.memN+1, q.memBytes+e.size
	} else {
		q.memN, q.memBytes = q.memN-1, q.memBytes-e.size
	}
}

func (q *Queue) setSpooled(e *entry, on bool) {
	if e.spooled == on {
		return
	}
	e.spooled = on
	if on {
		q.spN, q.spBytes = q.spN+1, q.spBytes+e.size
	} else {
		q.spN, q.spBytes = q.spN-1, q.spBytes-e.size
	}
}

func (q *Queue) wakeLocked() {
	if q.wake != nil {
		close(q.wake)
		q.wake = nil
	}
}

// startIOLocked registers the deletion of del with the I/O wait group,
// so Close waits for it.
func (q *Queue) startIOLocked(del []string) {
	if len(del) > 0 {
		q.io.Add(1)
	}
}

// removeFiles deletes dropped or delivered frames' files; it pairs with
// startIOLocked.
func (q *Queue) removeFiles(del []string) {
	if len(del) == 0 {
		return
	}
	defer q.io.Done()
	for _, name := range del {
		if err := q.sp.remove(name); err != nil {
			q.mu.Lock()
			q.spoolErrors++
			q.mu.Unlock()
			q.log.Error("queue: cannot delete spool file; the frame will be sent again after a restart", "err", err)
		}
	}
}

type writeOutcome uint8

const (
	keptDurable writeOutcome = iota // written
	keptMemory                      // write failed, frame kept in memory
	keptDropped                     // write failed, frame dropped
)

// finishWrite records the end of e's spool write (started under mu with
// q.io.Add). release drops e from memory once it is on disk.
func (q *Queue) finishWrite(e *entry, name string, release bool, err error) writeOutcome {
	defer q.io.Done()
	var ds *dirSyncError
	if errors.As(err, &ds) {
		q.log.Warn("queue: spool file written but the directory sync failed; it may be lost on power loss",
			"file", name, "err", err)
		err = nil
	}
	q.mu.Lock()
	e.writing = false
	out := keptDurable
	unlink := false
	if err == nil {
		q.spooledN++
		if ds != nil {
			q.spoolErrors++
		}
		unlink = e.gone // acked or dropped while being written
		if release {
			q.setResident(e, false)
		}
		if !e.resident {
			e.frame.Data = nil // a handed-out Item keeps its own reference
		}
	} else {
		q.spoolErrors++
		q.spoolErrorLocked(e, err)
		if !e.gone {
			q.setSpooled(e, false)
			e.file = ""
			out = keptMemory
			if !e.resident {
				// In flight, it stays (briefly over the memory limit)
				// rather than vanish under the consumer.
				if e.out || (q.memN < q.opt.MemoryFrames && q.memBytes+e.size <= q.opt.MemoryBytes) {
					q.setResident(e, true)
				} else {
					q.removeLocked(e)
					reason := ReasonSpoolError
					if isNoSpace(err) {
						reason = q.pol.reason() // a full disk is a full queue
					}
					q.dropLocked(e, reason)
					out = keptDropped
				}
			}
		}
	}
	q.armForLocked(e) // written, e can expire again
	q.mu.Unlock()
	if unlink {
		if err := q.sp.remove(name); err != nil {
			q.mu.Lock()
			q.spoolErrors++
			q.mu.Unlock()
		}
	}
	return out
}

// Next returns the oldest frame not yet handed out, blocking until there is
// one or ctx is done. The frame stays queued until Ack. Spooled frames are
// read back and checked; damaged ones are quarantined, counted and skipped.
func (q *Queue) Next(ctx context.Context) (Item, error) {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return Item{}, ErrClosed
		}
		del := q.expireLocked(q.now(), nil)
		q.startIOLocked(del)
		var e *entry
		for _, x := range q.items {
			if !x.out {
				e = x
				break
			}
		}
		if e == nil {
			if q.wake == nil {
				q.wake = make(chan struct{})
			}
			wake := q.wake
			q.mu.Unlock()
			q.removeFiles(del)
			select {
			case <-wake:
				continue
			case <-ctx.Done():
				return Item{}, ctx.Err()
			}
		}
		e.out = true
		e.attempts++
		it := Item{Frame: e.frame, Attempts: e.attempts, ID: FrameID(q.runTag, e.run, e.frame.Seq), e: e}
		if e.hasData() {
			q.mu.Unlock()
			q.removeFiles(del)
			return it, nil
		}
		name := e.file
		q.mu.Unlock()
		q.removeFiles(del)

		// Neither Ack, Nack nor the drop policy touch an entry in flight,
		// so reading without the lock is safe.
		f, err := q.sp.read(name)
		if err == nil {
			it.Frame.Data = f.Data
			return it, nil
		}
		q.readFailed(e, name, err)
	}
}

// readFailed drops an entry whose spool file cannot be read.
func (q *Queue) readFailed(e *entry, name string, err error) {
	reason := ReasonCorrupt
	if errors.Is(err, fs.ErrNotExist) {
		reason = ReasonMissing
	}
	q.mu.Lock()
	if q.closed {
		e.out = false
		q.mu.Unlock()
		return
	}
	q.removeLocked(e)
	q.dropped[reason]++
	if reason == ReasonCorrupt {
		q.spoolErrors++
	}
	q.log.Warn("queue: frame dropped", "reason", reason, "seq", e.frame.Seq, "trigger", e.frame.Trigger,
		"file", name, "err", err)
	quarantine := reason == ReasonCorrupt
	if quarantine {
		q.io.Add(1)
	}
	q.mu.Unlock()
	if quarantine {
		q.sp.quarantine(name)
		q.io.Done()
	}
}

// Ack removes a delivered frame and deletes its spool file. After Close it
// returns ErrClosed and the frame, spooled by Close, is sent again after
// the restart.
func (q *Queue) Ack(it Item) error {
	e := it.e
	if e == nil {
		return errors.New("queue: Ack of an Item that did not come from Next")
	}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return fmt.Errorf("queue: ack frame seq %d: %w", e.frame.Seq, ErrClosed)
	}
	if !e.out || e.gone {
		q.mu.Unlock()
		return fmt.Errorf("queue: Ack of frame seq %d that is not handed out (acked or nacked already?)", e.frame.Seq)
	}
	e.out = false
	var del []string
	if e.spooled && !e.writing {
		del = []string{e.file} // a file still being written is deleted by its writer
	}
	q.removeLocked(e)
	q.delivered++
	del = q.expireLocked(q.now(), del)
	q.startIOLocked(del)
	q.mu.Unlock()
	q.removeFiles(del)
	return nil
}

// Nack returns a frame that was not delivered to the head of the queue, to
// be handed out again by the next Next. While the link is down a frame only
// in memory is written to the spool.
func (q *Queue) Nack(it Item) error {
	e := it.e
	if e == nil {
		return errors.New("queue: Nack of an Item that did not come from Next")
	}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return fmt.Errorf("queue: nack frame seq %d: %w", e.frame.Seq, ErrClosed)
	}
	if !e.out || e.gone {
		q.mu.Unlock()
		return fmt.Errorf("queue: Nack of frame seq %d that is not handed out (acked or nacked already?)", e.frame.Seq)
	}
	e.out = false
	q.retried++
	q.wakeLocked()
	q.changedLocked()
	// Back in the queue, e may expire: now, if it is past MaxAge already.
	del := q.expireLocked(q.now(), nil)
	q.startIOLocked(del)
	var jobs []writeJob
	if !q.linkUp && !e.gone {
		jobs = q.spillLocked(e)
	}
	q.mu.Unlock()
	q.removeFiles(del)
	q.runJobs(jobs, true)
	return nil
}

// SetLinkUp tells the queue whether the sender can reach the receiver.
// When the link goes down, frames held only in memory are written to the
// spool (as room allows, without dropping anything) so that a long outage
// does not leave them exposed to a power cut; it blocks while they are
// written. New frames go to the spool until the link is up again.
func (q *Queue) SetLinkUp(up bool) {
	q.mu.Lock()
	was := q.linkUp
	q.linkUp = up
	var jobs []writeJob
	if was && !up && !q.closed {
		jobs = q.spillLocked(nil)
	}
	q.mu.Unlock()
	if len(jobs) > 0 {
		q.log.Info("queue: link down, moving frames from memory to the spool", "frames", len(jobs))
	}
	q.runJobs(jobs, true)
}

type writeJob struct {
	e     *entry
	name  string
	frame frame.Frame
}

// spillLocked marks frames held only in memory for writing to the spool
// where the spool has room: only e, or if e is nil every such frame not in
// flight. It registers the writes with q.io.
func (q *Queue) spillLocked(only *entry) []writeJob {
	if q.sp == nil || q.opt.AlwaysSpool {
		return nil
	}
	var jobs []writeJob
	for _, e := range q.items {
		if (only != nil && e != only) || (only == nil && e.out) || !e.resident || e.spooled || e.writing {
			continue
		}
		if _, ok := q.roomLocked(tiersSpool, 1, e.size, 0, 0, 0, 0); !ok {
			continue
		}
		jobs = append(jobs, q.startWriteLocked(e))
	}
	return jobs
}

func (q *Queue) startWriteLocked(e *entry) writeJob {
	e.file = fileName(e.run, e.n, e.frame.Time)
	e.writing = true
	q.setSpooled(e, true)
	q.io.Add(1)
	return writeJob{e: e, name: e.file, frame: e.frame}
}

func (q *Queue) runJobs(jobs []writeJob, release bool) {
	for i := range jobs {
		j := &jobs[i]
		q.finishWrite(j.e, j.name, release, q.sp.write(j.name, &j.frame))
	}
}

// Close stops the queue and writes every frame held only in memory, in
// flight or not, to the spool, so that SIGTERM loses nothing; the spool
// limits and drop policy still apply. Frames that cannot be spooled (no
// spool configured, or the write failed) are counted as dropped with
// reason "shutdown". Close waits for spool writes in progress. Next, Put,
// Ack and Nack return ErrClosed afterwards. It is safe to call twice.
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	q.wakeLocked()
	q.changedLocked()
	q.stopExpiryLocked()
	q.mu.Unlock()
	q.io.Wait() // no writer or deleter runs after this; Next's reads do not modify

	var errs []error
	if q.sp != nil {
		// One frame at a time, so that the drop policy sees the frames
		// spooled before it as candidates.
		q.mu.Lock()
		pending := slices.Clone(q.items)
		q.mu.Unlock()
		written := 0
		for _, e := range pending {
			q.mu.Lock()
			if e.spooled || e.gone {
				q.mu.Unlock()
				continue
			}
			var del []string
			ok := q.spoolAtCloseLocked(e, &del)
			var j writeJob
			if ok {
				j = q.startWriteLocked(e)
			}
			q.mu.Unlock()
			for _, name := range del {
				if err := q.sp.remove(name); err != nil {
					q.log.Error("queue: cannot delete spool file", "err", err)
				}
			}
			if !ok {
				continue
			}
			err := q.sp.write(j.name, &j.frame)
			if q.finishWrite(e, j.name, true, err) != keptDurable {
				errs = append(errs, err)
				continue
			}
			written++
		}
		if written > 0 {
			q.log.Info("queue: closed, frames from memory written to the spool", "frames", written)
		}
	}

	q.mu.Lock()
	for _, e := range append([]*entry(nil), q.items...) {
		if !e.spooled {
			q.removeLocked(e)
			q.dropLocked(e, ReasonShutdown)
		}
	}
	q.mu.Unlock()
	if q.sp != nil {
		errs = append(errs, q.sp.close())
	}
	return errors.Join(errs...)
}

// spoolAtCloseLocked makes room in the spool for e (queued, in memory) at
// Close, by the drop policy. It reports false when e itself is dropped.
func (q *Queue) spoolAtCloseLocked(e *entry, del *[]string) bool {
	pl := q.planLocked(need{cand: e, queued: true, tiers: tiersSpool, frames: 1, bytes: e.size})
	if !pl.ok {
		q.removeLocked(e)
		q.dropLocked(e, q.pol.reason())
		return false
	}
	*del = q.evictLocked(pl.victims, *del)
	return true
}

// Stats returns a snapshot. It only reads: expiry happens where frames
// move and on the queue's timer (expiry.go), so OldestAge may exceed MaxAge
// for a frame in flight, or for the moment until the timer runs.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	now := q.now()
	s := Stats{
		Pending: len(q.items), MemoryFrames: q.memN, MemoryBytes: q.memBytes,
		SpoolFrames: q.spN, SpoolBytes: q.spBytes,
		Enqueued: q.enqueued, Delivered: q.delivered, Retried: q.retried,
		Spooled: q.spooledN, Recovered: q.recovered, SpoolErrors: q.spoolErrors,
		Dropped: maps.Clone(q.dropped), LinkUp: q.linkUp,
		DeadLettered: q.dead.moved, DeadLetters: q.deadCountLocked(now), RunID: RunToken(q.runTag, q.run),
	}
	for _, e := range q.items {
		if e.out {
			s.InFlight++
		}
		if age := now.Sub(e.frame.Time); age > s.OldestAge {
			s.OldestAge = age
		}
	}
	q.mu.Unlock()
	return s
}
