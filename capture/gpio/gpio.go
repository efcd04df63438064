package gpio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"periph.io/x/conn/v3/driver/driverreg"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3/gpioioctl"

	"framepush/capture"
	"framepush/frame"
)

// Options configures a GPIO edge trigger.
//
// A line is chosen either by name (Line), which works for lines the kernel
// names through the device tree's gpio-line-names, such as "GPIO17" on a
// Raspberry Pi header, or by chip and offset (Chip + Offset), which works
// for every line, named or not. Unnamed lines, such as those of the qemu
// arm64 board's PL061, are not in gpioreg and need chip + offset. Prefer a
// chip's label to its gpiochipN name: on the Pi 5 the header chip is
// labelled "pinctrl-rp1" and its number changed between kernels.
type Options struct {
	Line   string // a named line in gpioreg, e.g. "GPIO17"; with Chip, a line name on that chip
	Chip   string // a chip by label ("pinctrl-rp1", "9030000.pl061"), name ("gpiochip0") or path ("/dev/gpiochip0")
	Offset int    // the line offset on Chip, when Line is empty

	Edge string // "rising" (default), "falling" or "both"
	// Pull is "up", "down" or "none" (default). "none" asks for no bias,
	// but periph's character-device driver sends no bias flag for it, so
	// the kernel keeps whatever bias the line already had (from firmware
	// or the device tree). Use "up" or "down" for a defined idle level.
	Pull string

	// Debounce is a lockout window: the first edge is accepted and every
	// edge within Debounce after it is counted as debounced and dropped.
	// Mechanical switches bounce for 1–20 ms. 0 accepts every edge.
	Debounce time.Duration
	// Frames is the number of frames per event; 0 means 1.
	Frames int
	// WhileActive keeps capturing while the line stays at its active level
	// (capture.Event.Active): high for a rising edge, low for a falling edge, and for
	// "both" low with a pull-up and high otherwise.
	WhileActive bool
	// ActiveFPS is copied into capture.Event.ActiveFPS: the capture rate while
	// active (0: capture.LoopOptions.ActiveFPS).
	ActiveFPS float64
	// PreTrigger is copied into capture.Event.Pre: how many frames from before the
	// edge to send with the event (the Loop's ring must be at least as big).
	PreTrigger int

	Logger *slog.Logger

	now func() time.Time // edge clock; tests replace it
}

// Stats counts what a Trigger saw.
type Stats struct {
	Edges     uint64 // edges reported by the driver
	Accepted  uint64 // edges that became events
	Debounced uint64 // edges dropped inside the debounce window
	Dropped   uint64 // accepted edges replaced by a newer one before delivery
}

// Trigger fires on edges of one GPIO input line (Kind "gpio").
//
// A goroutine of its own waits for edges and timestamps each one when it
// wakes (periph does not pass on the kernel's timestamp), so debouncing
// does not depend on how soon Wait is called. At most one event waits for
// delivery, in a capture.Pending: a newer edge replaces it (the newest
// wins, the rule Looper applies too), counted in Stats.Dropped.
type Trigger struct {
	pin     gpio.PinIn
	release func() // gives the line back to the kernel; nil for caller-owned pins
	name    string
	opts    Options
	active  gpio.Level
	log     *slog.Logger

	events    *capture.Pending
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
	waited    atomic.Bool // the first WaitForEdge has returned (Halt is safe)

	pinMu  sync.Mutex // guards pin.Read against release
	closed bool

	edges, accepted, debounced atomic.Uint64
}

// pollInterval bounds each WaitForEdge call. periph's WaitForEdge treats a
// negative timeout as an already-passed deadline (an instant false, so a
// loop around it spins) and 0 as forever (uninterruptible, since a Halt
// issued between two calls is lost). A finite timeout in a loop that
// checks for Close is the robust middle.
var pollInterval = 250 * time.Millisecond

// edges and pulls map the configuration words to periph's values.
var (
	edges = map[string]gpio.Edge{"": gpio.RisingEdge, "rising": gpio.RisingEdge, "falling": gpio.FallingEdge, "both": gpio.BothEdges}
	pulls = map[string]gpio.Pull{"": gpio.Float, "none": gpio.Float, "up": gpio.PullUp, "down": gpio.PullDown}
)

// check validates o and returns the periph edge and pull.
func (o *Options) check() (gpio.Edge, gpio.Pull, error) {
	edge, ok := edges[strings.ToLower(o.Edge)]
	if !ok {
		return 0, 0, fmt.Errorf("capture: gpio edge %q: want rising, falling or both", o.Edge)
	}
	pull, ok := pulls[strings.ToLower(o.Pull)]
	if !ok {
		return 0, 0, fmt.Errorf("capture: gpio pull %q: want up, down or none", o.Pull)
	}
	switch {
	case o.Debounce < 0:
		return 0, 0, fmt.Errorf("capture: gpio debounce %v is negative", o.Debounce)
	case o.Frames < 0:
		return 0, 0, fmt.Errorf("capture: gpio frames %d is negative", o.Frames)
	case o.PreTrigger < 0:
		return 0, 0, fmt.Errorf("capture: gpio pre-trigger %d is negative", o.PreTrigger)
	case o.ActiveFPS < 0:
		return 0, 0, fmt.Errorf("capture: gpio active fps %v is negative", o.ActiveFPS)
	}
	if o.Frames == 0 {
		o.Frames = 1
	}
	if o.now == nil {
		o.now = time.Now
	}
	return edge, pull, nil
}

// NewTrigger configures pin as an input with o's pull and edge and
// starts waiting for edges. The caller keeps ownership of pin: Close stops
// using it but does not release it. Line, Chip and Offset are ignored.
func NewTrigger(pin gpio.PinIn, o Options) (*Trigger, error) {
	return newTrigger(pin, pin.Name(), nil, o)
}

func newTrigger(pin gpio.PinIn, name string, release func(), o Options) (*Trigger, error) {
	edge, pull, err := o.check()
	if err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// Pull is always explicit (never PullNoChange), and In comes before
	// any Read: periph's Read on an unconfigured line requests it with a
	// pull-up.
	if err := pin.In(pull, edge); err != nil {
		return nil, fmt.Errorf("capture: gpio %s: configuring input with pull %s and edge %s: %w%s", name, pull, edge, err, busyHint(err))
	}
	active := gpio.High
	if edge == gpio.FallingEdge || (edge == gpio.BothEdges && pull == gpio.PullUp) {
		active = gpio.Low
	}
	t := &Trigger{
		pin: pin, release: release, name: name, opts: o, active: active, log: log,
		events: capture.NewPending(),
		done:   make(chan struct{}),
	}
	t.wg.Add(1)
	go t.watch()
	log.Info("gpio trigger ready", "line", name, "edge", edge, "pull", pull, "debounce", o.Debounce, "frames", o.Frames, "while_active", o.WhileActive)
	return t, nil
}

func busyHint(err error) string {
	// periph flattens errno into a string.
	if errors.Is(err, syscall.EBUSY) || strings.Contains(err.Error(), syscall.EBUSY.Error()) {
		return " (another program or a kernel driver holds the line; `framepush devices` shows its consumer)"
	}
	return ""
}

// watch waits for edges until Close, debounces them and posts events.
func (t *Trigger) watch() {
	defer t.wg.Done()
	var last time.Time // last accepted edge
	for {
		select {
		case <-t.done:
			return
		default:
		}
		began := time.Now()
		ok := t.pin.WaitForEdge(pollInterval)
		t.waited.Store(true)
		if !ok {
			// A driver that fails at once (closed descriptor, line not
			// configured for edges) must not turn this into a busy loop.
			if rest := pollInterval/2 - time.Since(began); rest > 0 {
				tm := time.NewTimer(rest)
				select {
				case <-t.done:
					tm.Stop()
					return
				case <-tm.C:
				}
			}
			continue
		}
		now := t.opts.now()
		t.edges.Add(1)
		if !last.IsZero() && now.Sub(last) < t.opts.Debounce {
			t.debounced.Add(1)
			continue
		}
		last = now
		t.accepted.Add(1)
		ev := capture.Event{Time: now, Kind: frame.GPIO, Frames: t.opts.Frames, Pre: t.opts.PreTrigger, ActiveFPS: t.opts.ActiveFPS}
		if t.opts.WhileActive {
			ev.Active = t.Active
		}
		t.events.Put(ev) // the newest wins, see capture.Pending
		t.log.Debug("gpio edge", "line", t.name)
	}
}

// Wait returns the next accepted edge.
func (t *Trigger) Wait(ctx context.Context) (capture.Event, error) {
	select {
	case <-t.done:
		return capture.Event{}, capture.ErrTriggerClosed
	default:
	}
	select {
	case ev := <-t.events.C():
		return ev, nil
	case <-ctx.Done():
		return capture.Event{}, ctx.Err()
	case <-t.done:
		return capture.Event{}, capture.ErrTriggerClosed
	}
}

// Active reports whether the line is at its active level now (see
// Options.WhileActive). It returns false once the trigger is closed.
func (t *Trigger) Active() bool {
	t.pinMu.Lock()
	defer t.pinMu.Unlock()
	if t.closed {
		return false
	}
	return t.pin.Read() == t.active
}

// Stats returns the counters so far.
func (t *Trigger) Stats() Stats {
	return Stats{Edges: t.edges.Load(), Accepted: t.accepted.Load(), Debounced: t.debounced.Load(), Dropped: t.events.Replaced()}
}

// Coalesced reports Stats.Dropped, so Loop's statistics include it.
func (t *Trigger) Coalesced() uint64 { return t.events.Replaced() }

// Close makes pending and later Waits return capture.ErrTriggerClosed at once,
// stops the edge goroutine (within one poll of pollInterval at worst; Halt
// usually interrupts it sooner) and then releases the line if Open
// requested it. The line is released only after the goroutine is gone,
// because periph reuses the freed descriptor number 0 as "no line".
// It is safe to call more than once.
func (t *Trigger) Close() error {
	t.closeOnce.Do(func() {
		close(t.done)
		if t.waited.Load() {
			if err := t.pin.Halt(); err != nil {
				t.log.Debug("gpio halt", "line", t.name, "err", err)
			}
		}
		t.wg.Wait()
		t.pinMu.Lock()
		t.closed = true
		if t.release != nil {
			t.release()
		}
		t.pinMu.Unlock()
	})
	return nil
}

// hostInit runs periph's driver registry once per process. Only the
// character-device driver (gpioioctl) is linked in: no sysfs GPIO (which
// the kernel deprecated) and no register-level drivers.
var hostInit = sync.OnceValue(func() error {
	restore := guardStdin()
	state, err := driverreg.Init()
	restore()
	if err != nil {
		return fmt.Errorf("capture: gpio driver init: %w", err)
	}
	// Driver failures surface only here, not as Init's error.
	for _, f := range state.Failed {
		slog.Warn("gpio driver failed", "driver", f.D.String(), "err", f.Err)
	}
	for _, f := range state.Skipped {
		slog.Debug("gpio driver skipped", "driver", f.D.String(), "reason", f.Err)
	}
	return nil
})

// openChips returns the chips the driver found; none off Linux, where
// periph installs a dummy chip for its own tests.
func openChips() ([]*gpioioctl.GPIOChip, error) {
	if err := hostInit(); err != nil {
		return nil, err
	}
	if runtime.GOOS != "linux" {
		return nil, nil
	}
	return gpioioctl.Chips, nil
}

// linesInUse holds the lines open by triggers of this process: periph
// hands out one shared object per line, so a second trigger on the same
// line would reconfigure and later close the first one's request.
var (
	linesMu    sync.Mutex
	linesInUse = map[*gpioioctl.GPIOLine]bool{}
)

// Open initialises periph's character-device GPIO driver, resolves the
// line o names, requests it as an input with o's pull and edge and starts
// a Trigger on it. Errors list the chips and named lines available.
func Open(o Options) (*Trigger, error) {
	if _, _, err := o.check(); err != nil {
		return nil, err
	}
	chips, err := openChips()
	if err != nil {
		return nil, err
	}
	line, name, err := resolve(chips, o)
	if err != nil {
		return nil, err
	}
	linesMu.Lock()
	if linesInUse[line] {
		linesMu.Unlock()
		return nil, fmt.Errorf("capture: gpio %s is already used by another trigger of this process", name)
	}
	linesInUse[line] = true
	linesMu.Unlock()
	release := func() {
		line.Close()
		linesMu.Lock()
		delete(linesInUse, line)
		linesMu.Unlock()
	}
	t, err := newTrigger(line, name, release, o)
	if err != nil {
		release()
		return nil, err
	}
	return t, nil
}

// resolve finds the line o names among chips.
func resolve(chips []*gpioioctl.GPIOChip, o Options) (*gpioioctl.GPIOLine, string, error) {
	if len(chips) == 0 {
		return nil, "", errors.New("capture: gpio: this machine has no GPIO character devices (/dev/gpiochip*)")
	}
	if o.Chip == "" {
		if o.Line == "" {
			return nil, "", fmt.Errorf("capture: gpio: no line given: set line: NAME or chip: LABEL with offset: N; %s", availableLines(chips))
		}
		p := gpioreg.ByName(o.Line)
		for {
			r, ok := p.(gpio.RealPin)
			if !ok {
				break
			}
			p = r.Real()
		}
		line, ok := p.(*gpioioctl.GPIOLine)
		if !ok || line == nil {
			return nil, "", fmt.Errorf("capture: gpio: no line named %q (unnamed lines need chip: LABEL and offset: N); %s", o.Line, availableLines(chips))
		}
		for _, c := range chips {
			if slices.Contains(c.Lines(), line) {
				return line, fmt.Sprintf("%s (%s [%s] offset %d)", o.Line, c.Path(), c.Label(), line.Number()), nil
			}
		}
		return line, o.Line, nil
	}
	chip, err := findChip(chips, o.Chip)
	if err != nil {
		return nil, "", err
	}
	var line *gpioioctl.GPIOLine
	if o.Line != "" {
		// periph prefixes the chip name to a line name another chip already used.
		if line = chip.ByName(o.Line); line == nil {
			line = chip.ByName(chip.Name() + "-" + o.Line)
		}
		if line == nil {
			return nil, "", fmt.Errorf("capture: gpio: chip %s [%s] has no line named %q; %s", chip.Path(), chip.Label(), o.Line, availableLines([]*gpioioctl.GPIOChip{chip}))
		}
	} else {
		if o.Offset < 0 || o.Offset >= chip.LineCount() || o.Offset >= len(chip.Lines()) {
			return nil, "", fmt.Errorf("capture: gpio: chip %s [%s] has lines 0 to %d, not offset %d", chip.Path(), chip.Label(), chip.LineCount()-1, o.Offset)
		}
		line = chip.Lines()[o.Offset]
	}
	return line, fmt.Sprintf("%s [%s] offset %d", chip.Path(), chip.Label(), line.Number()), nil
}

// findChip matches want against labels, then names, then paths
// (symlinks resolved).
func findChip(chips []*gpioioctl.GPIOChip, want string) (*gpioioctl.GPIOChip, error) {
	var byLabel []*gpioioctl.GPIOChip
	for _, c := range chips {
		if c.Label() == want {
			byLabel = append(byLabel, c)
		}
	}
	switch len(byLabel) {
	case 1:
		return byLabel[0], nil
	case 0:
	default:
		var names []string
		for _, c := range byLabel {
			names = append(names, c.Name())
		}
		return nil, fmt.Errorf("capture: gpio: %d chips are labelled %q (%s): name one by gpiochipN or path", len(byLabel), want, strings.Join(names, ", "))
	}
	for _, c := range chips {
		if c.Name() == want || c.Path() == want {
			return c, nil
		}
	}
	if real, err := filepath.EvalSymlinks(want); err == nil {
		for _, c := range chips {
			if p, err := filepath.EvalSymlinks(c.Path()); err == nil && p == real {
				return c, nil
			}
		}
	}
	return nil, fmt.Errorf("capture: gpio: no chip with label, name or path %q; %s", want, availableLines(chips))
}

// availableLines summarises chips and their named lines for error messages.
func availableLines(chips []*gpioioctl.GPIOChip) string {
	const maxNames = 32
	var b strings.Builder
	b.WriteString("available chips: ")
	for i, c := range chips {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s (name %s, label %q, %d lines", c.Path(), c.Name(), c.Label(), c.LineCount())
		var named []string
		for _, l := range c.Lines() {
			if n := l.Name(); n != "" && n != "-" && n != "_" {
				named = append(named, n)
			}
		}
		switch {
		case len(named) == 0:
			b.WriteString(", all unnamed")
		case len(named) > maxNames:
			fmt.Fprintf(&b, ", named: %s … and %d more", strings.Join(named[:maxNames], " "), len(named)-maxNames)
		default:
			fmt.Fprintf(&b, ", named: %s", strings.Join(named, " "))
		}
		b.WriteString(")")
	}
	return b.String()
}
