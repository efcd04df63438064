package v4l2

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"framepush/capture"
	"framepush/capture/mjpeg"
	"framepush/frame"
)

// Options configures a V4L2 camera. Zero values take the defaults
// noted on each field.
type Options struct {
	// Device is the node or, better, a stable udev link to it such as
	// /dev/v4l/by-id/usb-...-video-index0 (it is resolved again at every
	// reopen, so the camera is found after replugging). Default /dev/video0.
	Device string
	// Format is "auto" (MJPEG if the camera can do the size and rate,
	// else YUYV), "mjpeg" (frames passed through) or "yuyv" (frames
	// encoded to JPEG here). Default auto.
	Format string
	// Width and Height pick the frame size, which the camera must offer.
	// Both zero: the largest size of the chosen format.
	Width, Height int
	// FPS is the frame rate asked of the driver, which the camera must
	// offer at that size. Zero leaves the driver's current rate.
	FPS float64
	// Buffers is how many driver buffers to stream with, 2..8. Default 4.
	Buffers int
	// JPEGQuality is the quality of frames encoded from YUYV, 1..100.
	// Default mjpeg.DefaultJPEGQuality.
	JPEGQuality int
	// Controls are camera controls by name (brightness, exposure_time_absolute,
	// white_balance_automatic, ...), matched ignoring case, spaces and
	// punctuation. Default none.
	Controls map[string]int32
	// FrameTimeout is how long Capture waits for a valid frame before it
	// declares the camera gone. It has whole-second resolution (the
	// library's wait does). Default 5s.
	FrameTimeout time.Duration
}

// V4L2 option defaults and limits.
const (
	DefaultV4L2Device       = "/dev/video0"
	DefaultV4L2Buffers      = 4
	DefaultV4L2FrameTimeout = 5 * time.Second
	MinV4L2Buffers          = 2
	MaxV4L2Buffers          = 8
)

// withDefaults fills zero fields and checks the rest.
func (o Options) withDefaults() (Options, error) {
	if o.Device == "" {
		o.Device = DefaultV4L2Device
	}
	o.Format = strings.ToLower(strings.TrimSpace(o.Format))
	if o.Format == "" {
		o.Format = "auto"
	}
	if o.Buffers == 0 {
		o.Buffers = DefaultV4L2Buffers
	}
	if o.JPEGQuality == 0 {
		o.JPEGQuality = mjpeg.DefaultJPEGQuality
	}
	if o.FrameTimeout == 0 {
		o.FrameTimeout = DefaultV4L2FrameTimeout
	}
	var errs []string
	switch o.Format {
	case "auto", "mjpeg", "yuyv":
	default:
		errs = append(errs, fmt.Sprintf("format %q is not one of auto, mjpeg, yuyv", o.Format))
	}
	if o.Width < 0 || o.Height < 0 || (o.Width == 0) != (o.Height == 0) {
		errs = append(errs, fmt.Sprintf("size %dx%d: give both width and height, or neither for the largest size", o.Width, o.Height))
	}
	if o.FPS < 0 || math.IsNaN(o.FPS) || math.IsInf(o.FPS, 0) {
		errs = append(errs, fmt.Sprintf("fps %v: want a positive rate, or 0 for the driver's", o.FPS))
	}
	if o.Buffers < MinV4L2Buffers || o.Buffers > MaxV4L2Buffers {
		errs = append(errs, fmt.Sprintf("buffers %d is outside %d..%d", o.Buffers, MinV4L2Buffers, MaxV4L2Buffers))
	}
	if o.JPEGQuality < 1 || o.JPEGQuality > 100 {
		errs = append(errs, fmt.Sprintf("jpeg quality %d is outside 1..100", o.JPEGQuality))
	}
	if o.FrameTimeout < 0 {
		errs = append(errs, fmt.Sprintf("frame timeout %v is negative", o.FrameTimeout))
	}
	if len(errs) > 0 {
		return o, fmt.Errorf("capture: v4l2 %s: %s", o.Device, strings.Join(errs, "; "))
	}
	return o, nil
}

// Format is what a Source negotiated, as the driver reports it.
type Format struct {
	FourCC       string  // MJPG, JPEG or YUYV
	Width        int     // frame width the driver set
	Height       int     // frame height the driver set
	BytesPerLine int     // raw row length (YUYV), which may exceed 2*Width
	FullRange    bool    // YUYV samples use the full 0-255 range
	FPS          float64 // the rate the driver reports; 0 if it does not say
}

// Stats counts what a Source did with the driver's frames.
type Stats struct {
	Frames    uint64 // frames returned by Capture
	Stale     uint64 // frames queued before Capture was called, given back unseen
	Truncated uint64 // frames dropped because they were cut short
	Corrupt   uint64 // frames dropped because their JPEG structure was broken
}

// --- the kernel side, as the source sees it ---

// system opens and probes V4L2 nodes. v4l2_linux.go installs the real
// one in defaultSystem; elsewhere it stays nil (no V4L2). Tests pass fakes.
type system interface {
	// Probe queries a node (QUERYCAP and the format/size/rate tables)
	// without streaming from it.
	Probe(path string) (CameraInfo, error)
	// Open opens a node for streaming.
	Open(path string) (handle, error)
}

var defaultSystem system

// handle is an open camera: the subset of *webcam.Webcam the source
// uses, with the library's sharp edges filed off (see v4l2_linux.go).
// Exactly one goroutine uses it at a time.
type handle interface {
	// SetFormat sets pixel format and size and returns what the driver
	// actually set, read back from it.
	SetFormat(fourcc uint32, width, height uint32) (pixFormat, error)
	// SetFPS asks for a frame rate and returns the one the driver set
	// (0 if it does not report one).
	SetFPS(fps float64) (float64, error)
	// Controls lists the camera's controls.
	Controls() []control
	// SetControl sets one control.
	SetControl(id uint32, value int32) error
	// Start allocates the given number of buffers and starts streaming.
	// On failure the caller must Close the device.
	Start(buffers int) error
	// Wait waits up to seconds (at least 1) for a frame and returns
	// errTimeout if none came.
	Wait(seconds uint32) error
	// Dequeue takes a filled buffer without blocking, or returns
	// errAgain. The slice aliases driver memory: valid only until
	// Release, and never after Close.
	Dequeue() (data []byte, index uint32, err error)
	// Release gives a buffer back to the driver.
	Release(index uint32) error
	// Close stops streaming and closes the device; later calls do nothing.
	Close() error
}

// pixFormat is the driver's view of the format (struct v4l2_pix_format).
type pixFormat struct {
	Width, Height, PixelFormat, Field, BytesPerLine, SizeImage uint32
	Colorspace, Priv, Flags, YCbCrEnc, Quantization, XferFunc  uint32
}

// control is one camera control.
type control struct {
	ID       uint32
	Name     string // the driver's name, e.g. "White Balance, Automatic"
	Min, Max int32
	Kind     string // "int", "bool" or "menu"
}

// pathError words a failed operation on a device node, keeping the
// errno reachable with errors.Is.
type pathError struct {
	Op, Path string
	Err      error
}

func (e *pathError) Error() string { return e.Op + " " + e.Path + ": " + e.Err.Error() }
func (e *pathError) Unwrap() error { return e.Err }

var (
	errTimeout = errors.New("no frame within the wait")
	errAgain   = errors.New("no frame ready")
)

// iOC builds an ioctl request number the way linux/ioctl.h does on ARM,
// arm64 and x86: direction in bits 30-31, argument size in bits 16-29,
// type 'V' and number below. The size is part of the number, so a struct
// of the wrong size makes the kernel answer ENOTTY instead of corrupting
// memory.
func iOC(dir, nr, size uintptr) uintptr {
	return dir<<30 | size<<16 | uintptr('V')<<8 | nr
}

const (
	iOCWrite = 1
	iOCRead  = 2
)

// V4L2 quantization and colorspace values (linux/videodev2.h).
const (
	quantizationFullRange = 1
	colorspaceJPEG        = 7
)

// fullRange reports whether YUYV samples in f span 0-255: only when the
// driver says so, or for the JPEG colorspace whose default is full range.
func fullRange(f pixFormat) bool {
	return f.Quantization == quantizationFullRange || (f.Quantization == 0 && f.Colorspace == colorspaceJPEG)
}

// --- negotiation: a pure function over the enumerated tables ---

// modeChoice is the outcome of negotiation.
type modeChoice struct {
	FourCC        string
	Width, Height uint32
	FPS           float64 // exact rate to ask for; 0 = leave the driver's
}

// formatCandidates are the fourccs tried for a format option, best first.
// Some cameras label their MJPEG stream JPEG; it is the same thing.
func formatCandidates(format string) []string {
	switch format {
	case "mjpeg":
		return []string{"MJPG", "JPEG"}
	case "yuyv":
		return []string{"YUYV"}
	}
	return []string{"MJPG", "JPEG", "YUYV"}
}

// fPSMatch reports whether a listed rate satisfies the wanted one, with
// room for NTSC-style rates (29.97 for 30) and rounding.
func fPSMatch(offered, want float64) bool {
	return math.Abs(offered-want) <= 0.02*want+0.001
}

// negotiate picks format, size and rate from what the camera lists.
// MJPEG is preferred under "auto" because it is passed through untouched
// and USB cameras reach their higher sizes and rates only in MJPEG. When
// nothing fits, the error says why for each format tried and lists every
// format, size and rate the camera offers.
func negotiate(device string, formats []CameraFormat, o Options) (modeChoice, error) {
	var why []string
	want := fmt.Sprintf("%dx%d", o.Width, o.Height)
	if o.Width == 0 {
		want = "the largest size"
	}
	for _, cc := range formatCandidates(o.Format) {
		i := slices.IndexFunc(formats, func(f CameraFormat) bool { return f.FourCC == cc })
		if i < 0 {
			continue
		}
		f := formats[i]
		choice, reason := pickSize(f, o)
		if reason == "" {
			return choice, nil
		}
		why = append(why, cc+": "+reason)
	}
	if len(why) == 0 {
		names := map[string]string{"auto": "MJPG or YUYV", "mjpeg": "MJPG", "yuyv": "YUYV"}
		why = append(why, fmt.Sprintf("the camera offers no %s format", names[o.Format]))
	}
	rate := ""
	if o.FPS > 0 {
		rate = " at " + fpsString(o.FPS) + " fps"
	}
	return modeChoice{}, fmt.Errorf("capture: v4l2 %s: cannot capture %s %s%s (%s); the camera offers:\n%s",
		device, o.Format, want, rate, strings.Join(why, "; "), offers(formats))
}

// pickSize picks the size and rate within one format, or says why not.
func pickSize(f CameraFormat, o Options) (modeChoice, string) {
	if len(f.Sizes) == 0 {
		// Drivers that do not enumerate sizes accept S_FMT and adjust;
		// the read-back will tell what we got.
		if o.Width == 0 {
			return modeChoice{}, "the driver lists no sizes, so width and height must be given"
		}
		return modeChoice{FourCC: f.FourCC, Width: uint32(o.Width), Height: uint32(o.Height), FPS: o.FPS}, ""
	}
	var size CameraSize
	if o.Width == 0 {
		size = slices.MaxFunc(f.Sizes, func(a, b CameraSize) int {
			return int64Cmp(int64(a.Width)*int64(a.Height), int64(b.Width)*int64(b.Height))
		})
	} else {
		i := slices.IndexFunc(f.Sizes, func(s CameraSize) bool { return s.Contains(uint32(o.Width), uint32(o.Height)) })
		if i < 0 {
			return modeChoice{}, fmt.Sprintf("no %dx%d", o.Width, o.Height)
		}
		size = f.Sizes[i]
		size.Width, size.Height = uint32(o.Width), uint32(o.Height)
	}
	c := modeChoice{FourCC: f.FourCC, Width: size.Width, Height: size.Height}
	if o.FPS == 0 || len(size.Rates) == 0 || size.Range {
		// No rate asked for, or none we can check (a size range lists rates
		// for its largest size only): ask, and log what the driver set.
		c.FPS = o.FPS
		return c, ""
	}
	for _, r := range size.Rates {
		switch {
		case !r.Range && fPSMatch(r.FPS(), o.FPS):
			c.FPS = r.FPS() // the exact listed rate, e.g. 29.97 for 30
			return c, ""
		case r.Range && o.FPS <= r.FPS()*1.02 && o.FPS >= r.MinFPS()*0.98:
			c.FPS = o.FPS
			return c, ""
		}
	}
	return modeChoice{}, fmt.Sprintf("%dx%d runs at %s, not %s fps", size.Width, size.Height, ratesString(size.Rates), fpsString(o.FPS))
}

func int64Cmp(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// --- controls ---

// controlKey normalises a control name so that "White Balance,
// Automatic", "white_balance_automatic" (v4l2-ctl's spelling) and
// "WhiteBalanceAutomatic" all match: lower case, letters and digits only.
func controlKey(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// controlName is the v4l2-ctl style name shown to users: lower case
// words joined by underscores, e.g. white_balance_automatic.
func controlName(name string) string {
	var b strings.Builder
	pending := false
	for _, r := range strings.ToLower(name) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			if pending && b.Len() > 0 {
				b.WriteByte('_')
			}
			pending = false
			b.WriteRune(r)
		} else {
			pending = true
		}
	}
	return b.String()
}

// applyControls sets the wanted controls on a camera offering ctrls.
// Automatic modes go first (each group in name order), because a manual
// value such as exposure_time_absolute is refused while its automatic mode
// is on, and Go's map order is random. Unknown names and out-of-range
// values fail before anything is set, listing what the camera has.
func applyControls(device string, ctrls []control, want map[string]int32, set func(id uint32, v int32) error) ([]string, error) {
	byKey := make(map[string]control, len(ctrls))
	for _, c := range ctrls {
		if k := controlKey(c.Name); k != "" {
			if _, dup := byKey[k]; !dup {
				byKey[k] = c
			}
		}
	}
	type item struct {
		name string
		ctrl control
		v    int32
	}
	var items []item
	var errs []string
	for name, v := range want {
		c, ok := byKey[controlKey(name)]
		if !ok {
			errs = append(errs, fmt.Sprintf("no control %q", name))
			continue
		}
		if v < c.Min || v > c.Max {
			errs = append(errs, fmt.Sprintf("control %s: value %d is outside %d..%d", controlName(c.Name), v, c.Min, c.Max))
			continue
		}
		items = append(items, item{name, c, v})
	}
	if len(errs) > 0 {
		slices.Sort(errs)
		return nil, fmt.Errorf("capture: v4l2 %s: %s; the camera's controls are:\n%s", device, strings.Join(errs, "; "), controlList(ctrls))
	}
	isAuto := func(c control) bool { return strings.Contains(controlKey(c.Name), "auto") }
	slices.SortFunc(items, func(a, b item) int {
		if aa, ba := isAuto(a.ctrl), isAuto(b.ctrl); aa != ba {
			if aa {
				return -1
			}
			return 1
		}
		return strings.Compare(controlName(a.ctrl.Name), controlName(b.ctrl.Name))
	})
	applied := make([]string, 0, len(items))
	for _, it := range items {
		name := controlName(it.ctrl.Name)
		if err := set(it.ctrl.ID, it.v); err != nil {
			hint := ""
			if errors.Is(err, syscall.EACCES) {
				hint = " (read-only or inactive: switch its automatic mode to manual first)"
			}
			return applied, fmt.Errorf("capture: v4l2 %s: set control %s to %d: %w%s", device, name, it.v, err, hint)
		}
		applied = append(applied, fmt.Sprintf("%s=%d", name, it.v))
	}
	return applied, nil
}

// controlList renders controls for an error message, one per line.
func controlList(ctrls []control) string {
	if len(ctrls) == 0 {
		return "  (none)"
	}
	lines := make([]string, len(ctrls))
	for i, c := range ctrls {
		lines[i] = fmt.Sprintf("  %s (%s %d..%d)", controlName(c.Name), c.Kind, c.Min, c.Max)
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// --- the source ---

// Source captures from a V4L2 camera through github.com/blackjack/webcam.
// MJPEG frames are passed through (with the standard Huffman tables added
// when the camera leaves them out) after a structural check; YUYV frames
// are encoded to JPEG. Truncated and corrupt frames are dropped and
// counted. Capture and Close may be called from different goroutines
// (Close then waits, at most about a second, for Capture to let go of the
// device); Capture itself is for one goroutine.
type Source struct {
	// mu is held by Capture and Close. Close unmaps the driver buffers,
	// and touching a frame slice after that crashes the process (not a
	// panic: a fault), so Close must never run under a copy in progress.
	mu      sync.Mutex
	closing atomic.Bool // set by Close before it takes mu, so Capture stops waiting

	dev    handle
	log    *slog.Logger
	opts   Options
	format Format
	name   string
	now    func() time.Time

	enc     *mjpeg.YUYVEncoder // YUYV only
	scratch []byte             // reused: raw MJPEG copy / YUYV encoder output
	seq     uint64
	stats   counters
	gone    error // sticky: the device is lost, only Close is left
	closed  bool
}

// Limits of the capture loop.
const (
	// maxSpurious bounds "poll says ready, DQBUF says EAGAIN" in a row;
	// a driver stuck that way would otherwise keep us spinning.
	maxSpurious = 32
	// waitSeconds is one slice of the wait: the library's wait has
	// whole-second resolution, and the context is checked between slices.
	waitSeconds = 1
)

// Open opens a camera, negotiates format, size and rate against what
// it enumerates, sets controls and starts streaming. Errors say what the
// camera offers when it cannot do what opts ask. The format cannot be
// changed on an open source (the library cannot renegotiate after
// StopStreaming: the driver answers EBUSY while its buffers exist), so a
// different format means Close and Open again; capture.Reopener does that.
func Open(opts Options, log *slog.Logger) (*Source, error) {
	return openWith(defaultSystem, opts, log, time.Now)
}

// Opener returns a factory for NewReopener that opens the camera anew
// (renegotiating) each time. It avoids returning a typed nil capture.Source.
func Opener(opts Options, log *slog.Logger) func(context.Context) (capture.Source, error) {
	return func(context.Context) (capture.Source, error) {
		s, err := Open(opts, log)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
}

func openWith(sys system, opts Options, log *slog.Logger, now func() time.Time) (*Source, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if sys == nil {
		return nil, fmt.Errorf("capture: v4l2 %s: V4L2 cameras need Linux", opts.Device)
	}
	dev := opts.Device
	info, err := sys.Probe(dev)
	if err != nil {
		return nil, openError(dev, err)
	}
	if !info.Capture {
		return nil, fmt.Errorf("capture: v4l2 %s (%s, driver %s) is a %s; `framepush devices` lists the cameras", dev, info.Card, info.Driver, info.Kind())
	}
	choice, err := negotiate(dev, info.Formats, opts)
	if err != nil {
		return nil, err
	}

	d, err := sys.Open(dev)
	if err != nil {
		return nil, openError(dev, err)
	}
	ok := false
	defer func() {
		if !ok {
			d.Close()
		}
	}()
	pix, err := d.SetFormat(fourCCCode(choice.FourCC), choice.Width, choice.Height)
	if err != nil {
		return nil, fmt.Errorf("capture: v4l2 %s: set format %s %dx%d: %w%s", dev, choice.FourCC, choice.Width, choice.Height, err, busyHint(err))
	}
	// The library's SetImageFormat reports the size we asked for, not what
	// the driver chose; pix is read back from the driver, and the encoder
	// must use its width, height and bytesperline or the image shears.
	got := fourCC(pix.PixelFormat)
	if !slices.Contains(formatCandidates(opts.Format), got) {
		return nil, fmt.Errorf("capture: v4l2 %s: asked for %s, the driver set %s, which framepush cannot use", dev, choice.FourCC, got)
	}
	if pix.Width != choice.Width || pix.Height != choice.Height {
		log.Warn("camera adjusted the frame size", "device", dev, "asked", fmt.Sprintf("%dx%d", choice.Width, choice.Height), "got", fmt.Sprintf("%dx%d", pix.Width, pix.Height))
	}
	format := Format{
		FourCC: got, Width: int(pix.Width), Height: int(pix.Height),
		BytesPerLine: int(pix.BytesPerLine), FullRange: fullRange(pix),
	}
	if choice.FPS > 0 {
		fps, err := d.SetFPS(choice.FPS)
		switch {
		case err != nil:
			// Some drivers have no rate control (ENOTTY); the camera then
			// runs at its own rate, which the trigger paces anyway.
			log.Warn("camera did not take the frame rate", "device", dev, "fps", choice.FPS, "err", err)
		case fps > 0 && !fPSMatch(fps, choice.FPS):
			log.Warn("camera runs at another frame rate", "device", dev, "asked", choice.FPS, "got", fps)
		}
		format.FPS = fps
	}
	var applied []string
	if len(opts.Controls) > 0 {
		if applied, err = applyControls(dev, d.Controls(), opts.Controls, d.SetControl); err != nil {
			return nil, err
		}
	}
	s := &Source{dev: d, log: log, opts: opts, format: format, name: "v4l2:" + dev, now: now}
	if got == "YUYV" {
		s.enc, err = mjpeg.NewYUYVEncoder(mjpeg.YUYVOptions{
			Width: format.Width, Height: format.Height, Stride: format.BytesPerLine,
			Quality: opts.JPEGQuality, FullRange: format.FullRange,
		})
		if err != nil {
			return nil, fmt.Errorf("capture: v4l2 %s: %w", dev, err)
		}
	}
	// The library would otherwise ask for 256 buffers: up to 256 frames of
	// driver memory pinned (or REQBUFS refused), and seconds of stale
	// frames between a trigger and its image.
	if err := d.Start(opts.Buffers); err != nil {
		return nil, fmt.Errorf("capture: v4l2 %s: start streaming with %d buffers: %w%s", dev, opts.Buffers, err, busyHint(err))
	}
	ok = true
	attrs := []any{"device", dev, "card", info.Card, "format", got,
		"size", fmt.Sprintf("%dx%d", format.Width, format.Height), "fps", format.FPS, "buffers", opts.Buffers}
	if target, err := filepath.EvalSymlinks(dev); err == nil && target != dev {
		attrs = append(attrs, "node", target)
	}
	if len(applied) > 0 {
		attrs = append(attrs, "controls", strings.Join(applied, ","))
	}
	log.Info("camera opened", attrs...)
	return s, nil
}

// openError words a failure to reach the device for the user.
func openError(dev string, err error) error {
	switch {
	case errors.Is(err, syscall.ENOENT):
		return fmt.Errorf("capture: v4l2 %s: %w: no such camera (unplugged? `framepush devices` lists the cameras)", dev, err)
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return fmt.Errorf("capture: v4l2 %s: %w (the agent's user needs to be in the video group)", dev, err)
	}
	return fmt.Errorf("capture: v4l2 %s: %w%s", dev, err, busyHint(err))
}

func busyHint(err error) string {
	switch {
	case errors.Is(err, syscall.EBUSY):
		return " (the camera is in use by another program?)"
	case errors.Is(err, syscall.ENOSPC):
		return " (not enough USB bandwidth: another camera on the same bus? try a smaller size, a lower rate or MJPEG)"
	}
	return ""
}

// Format returns what was negotiated.
func (s *Source) Format() Format { return s.format }

// counters are the live counters behind Stats; atomic, so that
// Stats does not wait for a Capture that is waiting for the camera.
type counters struct{ frames, stale, truncated, corrupt atomic.Uint64 }

// Stats returns the frame counters so far. It may be called from any
// goroutine.
func (s *Source) Stats() Stats {
	return Stats{
		Frames: s.stats.frames.Load(), Stale: s.stats.stale.Load(),
		Truncated: s.stats.truncated.Load(), Corrupt: s.stats.corrupt.Load(),
	}
}

// Capture returns the next frame exposed after the call: frames the driver
// queued before it (while nobody asked) are given back unseen, then it
// waits for a new one. The frame in flight when Capture is called may have
// started its exposure up to one frame interval earlier; nothing older is
// ever returned. Frames carry the time they were dequeued and a sequence
// number counting returned frames.
//
// It waits at most FrameTimeout for a valid frame; then, or when the driver
// reports an error (ENODEV on unplug, EIO, anything else a dequeue should
// never return), the camera is gone: the error wraps capture.ErrDeviceGone and
// the source must be closed and opened again. A cancelled ctx is noticed
// within about a second.
func (s *Source) Capture(ctx context.Context) (frame.Frame, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.closing.Load() {
		return frame.Frame{}, fmt.Errorf("capture: v4l2 %s: source is closed", s.opts.Device)
	}
	if s.gone != nil {
		return frame.Frame{}, s.gone
	}
	if err := ctx.Err(); err != nil {
		return frame.Frame{}, err
	}
	if err := s.drain(); err != nil {
		return frame.Frame{}, s.lost(err)
	}
	deadline := s.now().Add(s.opts.FrameTimeout)
	spurious := 0
	for {
		if s.closing.Load() {
			return frame.Frame{}, fmt.Errorf("capture: v4l2 %s: source is closed", s.opts.Device)
		}
		if err := ctx.Err(); err != nil {
			return frame.Frame{}, err
		}
		err := s.dev.Wait(waitSeconds)
		if errors.Is(err, errTimeout) {
			if !s.now().Before(deadline) {
				return frame.Frame{}, s.lost(fmt.Errorf("no frame for %v (frame timeout)", s.opts.FrameTimeout))
			}
			continue
		}
		if err != nil {
			return frame.Frame{}, s.lost(fmt.Errorf("wait for a frame: %w", err))
		}
		data, index, err := s.dev.Dequeue()
		if errors.Is(err, errAgain) {
			if spurious++; spurious >= maxSpurious {
				return frame.Frame{}, s.lost(fmt.Errorf("the driver said a frame was ready %d times in a row but had none", spurious))
			}
			continue
		}
		if err != nil {
			return frame.Frame{}, s.lost(fmt.Errorf("dequeue a frame: %w", err))
		}
		spurious = 0
		taken := s.now()
		perr := s.copyOut(data)
		// data must not be touched from here on: the driver owns it again.
		if err := s.dev.Release(index); err != nil {
			return frame.Frame{}, s.lost(fmt.Errorf("give a buffer back to the driver: %w", err))
		}
		var out []byte
		if perr == nil {
			out, perr = s.finish()
		}
		if perr != nil {
			s.countDrop(perr)
			if !s.now().Before(deadline) {
				return frame.Frame{}, s.lost(fmt.Errorf("no valid frame for %v (%d truncated, %d corrupt so far): last: %w",
					s.opts.FrameTimeout, s.stats.truncated.Load(), s.stats.corrupt.Load(), perr))
			}
			continue
		}
		s.seq++
		s.stats.frames.Add(1)
		return frame.Frame{Data: out, Format: frame.JPEG, Seq: s.seq, Time: taken, Source: s.name}, nil
	}
}

// drain gives back every frame the driver filled before this call. The
// bound keeps a driver that refills as fast as we return from holding us.
func (s *Source) drain() error {
	for range s.opts.Buffers + 2 {
		_, index, err := s.dev.Dequeue()
		if errors.Is(err, errAgain) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("drain stale frames: %w", err)
		}
		if err := s.dev.Release(index); err != nil {
			return fmt.Errorf("give a stale buffer back to the driver: %w", err)
		}
		s.stats.stale.Add(1)
	}
	return nil
}

// copyOut takes what it needs from a driver buffer, as quickly as
// possible: MJPEG is copied into the reused scratch buffer, YUYV is
// de-interleaved into the encoder's reused image. Nothing keeps data.
func (s *Source) copyOut(data []byte) error {
	if s.enc != nil {
		return s.enc.Load(data)
	}
	s.scratch = append(s.scratch[:0], data...)
	return nil
}

// finish turns what copyOut took into the frame's own bytes. frame.Frame.Data
// must not alias anything reused, so each frame gets a buffer of its own,
// sized exactly.
func (s *Source) finish() ([]byte, error) {
	if s.enc != nil {
		var err error
		if s.scratch, err = s.enc.Encode(s.scratch[:0]); err != nil {
			return nil, err
		}
		return bytes.Clone(s.scratch), nil
	}
	out, err := mjpeg.Fix(make([]byte, 0, len(s.scratch)+mjpeg.StandardDHTSize), s.scratch)
	if err == nil {
		err = mjpeg.Validate(out)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// countDrop counts a dropped frame and logs the first of each kind and
// then every hundredth, so a flaky cable shows without flooding the log.
func (s *Source) countDrop(err error) {
	var n uint64
	if errors.Is(err, mjpeg.ErrTruncated) {
		n = s.stats.truncated.Add(1)
	} else {
		n = s.stats.corrupt.Add(1)
	}
	if n == 1 || n%100 == 0 {
		st := s.Stats()
		s.log.Warn("dropped a bad frame from the camera", "device", s.opts.Device, "err", err,
			"truncated", st.Truncated, "corrupt", st.Corrupt)
	}
}

// lost records that the device is gone and returns the sticky error.
func (s *Source) lost(cause error) error {
	s.gone = fmt.Errorf("capture: v4l2 %s: %w: %w", s.opts.Device, cause, capture.ErrDeviceGone)
	s.log.Warn("camera lost", "device", s.opts.Device, "err", cause, "frames", s.stats.frames.Load())
	return s.gone
}

// Close stops streaming and closes the device. It is safe to call more
// than once and from another goroutine than Capture's: the library's own
// Close is neither (a second close(2) could hit a descriptor reused by a
// socket, and it unmaps buffers a running copy may be reading).
func (s *Source) Close() error {
	s.closing.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.dev.Close()
	st := s.Stats()
	s.log.Info("camera closed", "device", s.opts.Device, "frames", st.Frames,
		"stale", st.Stale, "truncated", st.Truncated, "corrupt", st.Corrupt)
	if err != nil {
		return fmt.Errorf("capture: v4l2 %s: close: %w", s.opts.Device, err)
	}
	return nil
}
