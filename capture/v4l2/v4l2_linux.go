//go:build linux

package v4l2

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"unsafe"

	"github.com/blackjack/webcam"
	"golang.org/x/sys/unix"
)

func init() { defaultSystem = linuxSystem{} }

// linuxSystem is the real kernel side: probing with raw ioctls, streaming
// through github.com/blackjack/webcam.
type linuxSystem struct{}

// --- raw V4L2 ioctls for probing and format read-back ---
//
// The structs mirror linux/videodev2.h with fixed-size fields, so they have
// the kernel's layout on 32-bit ARM (GOARM=6/7) as on arm64 and amd64. The
// one layout that depends on the word size is v4l2_format, whose union
// holds pointers (struct v4l2_window): it starts at offset 8 on 64-bit
// and 4 on 32-bit kernels ABIs, making the struct 208 or 204 bytes.

type capability struct {
	Driver       [16]byte
	Card         [32]byte
	BusInfo      [32]byte
	Version      uint32
	Capabilities uint32
	DeviceCaps   uint32
	Reserved     [3]uint32
}

type fmtDesc struct {
	Index       uint32
	Type        uint32
	Flags       uint32
	Description [32]byte
	PixelFormat uint32
	MbusCode    uint32
	Reserved    [3]uint32
}

type frmSizeEnum struct {
	Index       uint32
	PixelFormat uint32
	Type        uint32
	Union       [6]uint32 // discrete {w, h} or stepwise {min_w, max_w, step_w, min_h, max_h, step_h}
	Reserved    [2]uint32
}

type frmIvalEnum struct {
	Index       uint32
	PixelFormat uint32
	Width       uint32
	Height      uint32
	Type        uint32
	Union       [6]uint32 // discrete {num, den} or stepwise {min, max, step} fractions
	Reserved    [2]uint32
}

type kernelFormat struct {
	Type uint32
	_    [unsafe.Sizeof(uintptr(0)) - 4]byte // union alignment: pointer-sized
	Pix  pixFormat
	_    [200 - unsafe.Sizeof(pixFormat{})]byte
}

// Layout checks: each line fails to compile if a size is off.
var (
	_ [unsafe.Sizeof(capability{}) - 104]byte
	_ [104 - unsafe.Sizeof(capability{})]byte
	_ [unsafe.Sizeof(fmtDesc{}) - 64]byte
	_ [64 - unsafe.Sizeof(fmtDesc{})]byte
	_ [unsafe.Sizeof(frmSizeEnum{}) - 44]byte
	_ [44 - unsafe.Sizeof(frmSizeEnum{})]byte
	_ [unsafe.Sizeof(frmIvalEnum{}) - 52]byte
	_ [52 - unsafe.Sizeof(frmIvalEnum{})]byte
	_ [unsafe.Sizeof(pixFormat{}) - 48]byte
	_ [48 - unsafe.Sizeof(pixFormat{})]byte
	_ [unsafe.Sizeof(kernelFormat{}) - (200 + unsafe.Sizeof(uintptr(0)))]byte
	_ [(200 + unsafe.Sizeof(uintptr(0))) - unsafe.Sizeof(kernelFormat{})]byte
)

var (
	ioctlQueryCap    = iOC(iOCRead, 0, unsafe.Sizeof(capability{}))
	ioctlEnumFmt     = iOC(iOCRead|iOCWrite, 2, unsafe.Sizeof(fmtDesc{}))
	ioctlGetFmt      = iOC(iOCRead|iOCWrite, 4, unsafe.Sizeof(kernelFormat{}))
	ioctlEnumSizes   = iOC(iOCRead|iOCWrite, 74, unsafe.Sizeof(frmSizeEnum{}))
	ioctlEnumIntervs = iOC(iOCRead|iOCWrite, 75, unsafe.Sizeof(frmIvalEnum{}))
)

const (
	bufTypeVideoCapture = 1
	frmTypeDiscrete     = 1
	frmTypeContinuous   = 2
	frmTypeStepwise     = 3
	// maxEnum bounds every enumeration: a buggy driver that never
	// answers EINVAL must not hang `framepush devices`.
	maxEnum = 512
)

func ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	for {
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
		switch errno {
		case 0:
			return nil
		case unix.EINTR:
			continue
		}
		return errno
	}
}

func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// Probe opens path, queries it and closes it again.
func (linuxSystem) Probe(path string) (CameraInfo, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return CameraInfo{}, &pathError{"open", path, err}
	}
	defer unix.Close(fd)
	var cp capability
	if err := ioctl(fd, ioctlQueryCap, unsafe.Pointer(&cp)); err != nil {
		if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EINVAL) {
			return CameraInfo{}, fmt.Errorf("%s is not a V4L2 device", path)
		}
		return CameraInfo{}, &pathError{"query capabilities of", path, err}
	}
	caps := cp.Capabilities
	if caps&capDeviceCaps != 0 {
		// A node's own capabilities; Capabilities covers the whole device,
		// so a UVC metadata node would pass for a camera (the library's
		// Open makes that mistake).
		caps = cp.DeviceCaps
	}
	info := CameraInfo{
		Driver: cString(cp.Driver[:]), Card: cString(cp.Card[:]), Bus: cString(cp.BusInfo[:]),
		Caps: caps, Capture: captureCaps(caps),
	}
	if info.Capture {
		info.Formats = enumFormats(fd)
	}
	return info, nil
}

func init() { probeControls = listControls }

// listControls opens a capture node through the library only to read
// its controls (no buffers are mapped, so Close is safe), sorted by name.
func listControls(path string) []CameraControl {
	cam, err := webcam.Open(path)
	if err != nil {
		return nil
	}
	d := &webcamHandle{cam: cam}
	ctrls := d.Controls()
	cam.Close()
	out := make([]CameraControl, 0, len(ctrls))
	for _, c := range ctrls {
		out = append(out, CameraControl{Name: controlName(c.Name), Kind: c.Kind, Min: c.Min, Max: c.Max})
	}
	slices.SortFunc(out, func(a, b CameraControl) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func enumFormats(fd int) []CameraFormat {
	var out []CameraFormat
	for i := uint32(0); i < maxEnum; i++ {
		d := fmtDesc{Index: i, Type: bufTypeVideoCapture}
		if ioctl(fd, ioctlEnumFmt, unsafe.Pointer(&d)) != nil {
			break
		}
		out = append(out, CameraFormat{
			FourCC:      fourCC(d.PixelFormat),
			Description: cString(d.Description[:]),
			Sizes:       enumSizes(fd, d.PixelFormat),
		})
	}
	return out
}

func enumSizes(fd int, pixfmt uint32) []CameraSize {
	var out []CameraSize
	for i := uint32(0); i < maxEnum; i++ {
		e := frmSizeEnum{Index: i, PixelFormat: pixfmt}
		if ioctl(fd, ioctlEnumSizes, unsafe.Pointer(&e)) != nil {
			break
		}
		var s CameraSize
		switch e.Type {
		case frmTypeDiscrete:
			s = CameraSize{Width: e.Union[0], Height: e.Union[1]}
		case frmTypeContinuous, frmTypeStepwise:
			u := e.Union
			s = CameraSize{Range: true, MinWidth: u[0], Width: u[1], StepWidth: u[2], MinHeight: u[3], Height: u[4], StepHeight: u[5]}
		default:
			continue
		}
		s.Rates = enumRates(fd, pixfmt, s.Width, s.Height)
		out = append(out, s)
		if s.Range {
			break // a range is the only entry
		}
	}
	return out
}

func enumRates(fd int, pixfmt, w, h uint32) []CameraRate {
	var out []CameraRate
	for i := uint32(0); i < maxEnum; i++ {
		e := frmIvalEnum{Index: i, PixelFormat: pixfmt, Width: w, Height: h}
		if ioctl(fd, ioctlEnumIntervs, unsafe.Pointer(&e)) != nil {
			break
		}
		u := e.Union
		switch e.Type {
		case frmTypeDiscrete:
			if u[0] != 0 && u[1] != 0 {
				out = append(out, CameraRate{Num: u[0], Den: u[1]})
			}
		case frmTypeContinuous, frmTypeStepwise:
			// The library (v0.6.1) gives up on continuous intervals; they
			// are a plain range.
			if u[0] != 0 && u[1] != 0 && u[2] != 0 && u[3] != 0 {
				out = append(out, CameraRate{Num: u[0], Den: u[1], Range: true, MaxNum: u[2], MaxDen: u[3]})
			}
			return out
		}
	}
	return out
}

func getFormat(fd int) (pixFormat, error) {
	f := kernelFormat{Type: bufTypeVideoCapture}
	if err := ioctl(fd, ioctlGetFmt, unsafe.Pointer(&f)); err != nil {
		return pixFormat{}, err
	}
	return f.Pix, nil
}

// --- streaming through the library ---

// webcamHandle wraps *webcam.Webcam. Each method documents the library edge
// it covers (github.com/blackjack/webcam v0.6.1).
type webcamHandle struct {
	cam *webcam.Webcam
	// side is a second descriptor on the same node, for VIDIOC_G_FMT: the
	// library keeps its own private and offers no read-back, and the V4L2
	// format is per device, not per open file.
	side   int
	closed bool
}

// Open opens the node for streaming. The library opens O_NONBLOCK, which
// is what makes Dequeue non-blocking (DQBUF answers EAGAIN when empty).
func (linuxSystem) Open(path string) (handle, error) {
	cam, err := webcam.Open(path)
	if err != nil {
		return nil, &pathError{"open", path, err}
	}
	side, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		cam.Close()
		return nil, &pathError{"open", path, err}
	}
	return &webcamHandle{cam: cam, side: side}, nil
}

// SetFormat sets the format through the library, then reads back what the
// driver set: SetImageFormat returns the width and height it was given,
// not the ones the driver chose, and says nothing of bytesperline.
func (d *webcamHandle) SetFormat(fourcc, w, h uint32) (pixFormat, error) {
	if _, _, _, err := d.cam.SetImageFormat(webcam.PixelFormat(fourcc), w, h); err != nil {
		return pixFormat{}, err
	}
	pix, err := getFormat(d.side)
	if err != nil {
		return pixFormat{}, fmt.Errorf("read back the format: %w", err)
	}
	return pix, nil
}

func (d *webcamHandle) SetFPS(fps float64) (float64, error) {
	if err := d.cam.SetFramerate(float32(fps)); err != nil {
		return 0, err
	}
	got, err := d.cam.GetFramerate()
	if err != nil {
		return 0, nil // set, but the driver does not say what it chose
	}
	return float64(got), nil
}

func (d *webcamHandle) Controls() []control {
	m := d.cam.GetControls()
	out := make([]control, 0, len(m))
	for id, c := range m {
		kind := "int"
		switch c.Type {
		case 1:
			kind = "bool"
		case 2:
			kind = "menu"
		}
		out = append(out, control{ID: uint32(id), Name: c.Name, Min: c.Min, Max: c.Max, Kind: kind})
	}
	return out
}

func (d *webcamHandle) SetControl(id uint32, v int32) error {
	return d.cam.SetControl(webcam.ControlID(id), v)
}

// Start sets the buffer count (the library's default is 256) and starts
// streaming. When StartStreaming fails after mapping buffers, the library
// neither unmaps them nor lets Close do it (Close unmaps only when
// streaming started), and closing the descriptor does not unmap either:
// each failed attempt would pin a set of frame buffers for the life of the
// process, and a reopen loop (USB bandwidth refused: ENOSPC) would eat a
// small board's memory. So they are unmapped here.
func (d *webcamHandle) Start(buffers int) error {
	if err := d.cam.SetBufferCount(uint32(buffers)); err != nil {
		return err
	}
	if err := d.cam.StartStreaming(); err != nil {
		unmapLeaked(d.cam)
		return err
	}
	return nil
}

// webcamBuffers returns the library's private buffer list (pointer to
// the field), found by reflection because v0.6.1 offers no other way to
// release the mappings a failed StartStreaming leaves. ok is false if the
// field is not what v0.6.1 has, e.g. after a library upgrade.
func webcamBuffers(cam *webcam.Webcam) (bufs *[][]byte, ok bool) {
	f := reflect.ValueOf(cam).Elem().FieldByName("buffers")
	if !f.IsValid() || f.Type() != reflect.TypeFor[[][]byte]() {
		return nil, false
	}
	return (*[][]byte)(unsafe.Pointer(f.UnsafeAddr())), true
}

func unmapLeaked(cam *webcam.Webcam) {
	bufs, ok := webcamBuffers(cam)
	if !ok {
		return
	}
	for _, b := range *bufs {
		if len(b) > 0 {
			unix.Munmap(b)
		}
	}
	*bufs = nil
}

// Wait waits for a frame. The library's timeout is in whole seconds and a
// timeout is a *webcam.Timeout, not an error value to compare.
func (d *webcamHandle) Wait(seconds uint32) error {
	err := d.cam.WaitForFrame(max(seconds, 1))
	var timeout *webcam.Timeout
	if errors.As(err, &timeout) {
		return errTimeout
	}
	return err
}

// Dequeue uses GetFrame, never ReadFrame: ReadFrame gives the buffer back
// to the driver before returning, so the driver may be overwriting the
// slice while the caller reads it.
func (d *webcamHandle) Dequeue() ([]byte, uint32, error) {
	data, index, err := d.cam.GetFrame()
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
		return nil, 0, errAgain
	}
	return data, index, err
}

func (d *webcamHandle) Release(index uint32) error {
	return d.cam.ReleaseFrame(index)
}

// Close closes once: the library's Close calls close(2) on every call, and
// a second close could hit a descriptor number already reused elsewhere.
func (d *webcamHandle) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	err := d.cam.Close()
	if cerr := unix.Close(d.side); err == nil {
		err = cerr
	}
	return err
}

// selfCheck reports whether the library still has the private field
// unmapLeaked relies on; tests call it.
func (linuxSystem) selfCheck() error {
	if _, ok := webcamBuffers(&webcam.Webcam{}); !ok {
		return errors.New("github.com/blackjack/webcam.Webcam has no buffers [][]byte field: the unmap after a failed StartStreaming does nothing")
	}
	return nil
}
