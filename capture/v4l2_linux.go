//go:build linux

package capture

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

func init() { v4lSys = v4lLinux{} }

// v4lLinux is the real kernel side: probing with raw ioctls, streaming
// through github.com/blackjack/webcam.
type v4lLinux struct{}

// --- raw V4L2 ioctls for probing and format read-back ---
//
// The structs mirror linux/videodev2.h with fixed-size fields, so they have
// the kernel's layout on 32-bit ARM (GOARM=6/7) as on arm64 and amd64. The
// one layout that depends on the word size is v4l2_format, whose union
// holds pointers (struct v4l2_window): it starts at offset 8 on 64-bit
// and 4 on 32-bit kernels ABIs, making the struct 208 or 204 bytes.

type v4lCapability struct {
	Driver       [16]byte
	Card         [32]byte
	BusInfo      [32]byte
	Version      uint32
	Capabilities uint32
	DeviceCaps   uint32
	Reserved     [3]uint32
}

type v4lFmtDesc struct {
	Index       uint32
	Type        uint32
	Flags       uint32
	Description [32]byte
	PixelFormat uint32
	MbusCode    uint32
	Reserved    [3]uint32
}

type v4lFrmSizeEnum struct {
	Index       uint32
	PixelFormat uint32
	Type        uint32
	Union       [6]uint32 // discrete {w, h} or stepwise {min_w, max_w, step_w, min_h, max_h, step_h}
	Reserved    [2]uint32
}

type v4lFrmIvalEnum struct {
	Index       uint32
	PixelFormat uint32
	Width       uint32
	Height      uint32
	Type        uint32
	Union       [6]uint32 // discrete {num, den} or stepwise {min, max, step} fractions
	Reserved    [2]uint32
}

type v4lFormat struct {
	Type uint32
	_    [unsafe.Sizeof(uintptr(0)) - 4]byte // union alignment: pointer-sized
	Pix  v4lPixFormat
	_    [200 - unsafe.Sizeof(v4lPixFormat{})]byte
}

// Layout checks: each line fails to compile if a size is off.
var (
	_ [unsafe.Sizeof(v4lCapability{}) - 104]byte
	_ [104 - unsafe.Sizeof(v4lCapability{})]byte
	_ [unsafe.Sizeof(v4lFmtDesc{}) - 64]byte
	_ [64 - unsafe.Sizeof(v4lFmtDesc{})]byte
	_ [unsafe.Sizeof(v4lFrmSizeEnum{}) - 44]byte
	_ [44 - unsafe.Sizeof(v4lFrmSizeEnum{})]byte
	_ [unsafe.Sizeof(v4lFrmIvalEnum{}) - 52]byte
	_ [52 - unsafe.Sizeof(v4lFrmIvalEnum{})]byte
	_ [unsafe.Sizeof(v4lPixFormat{}) - 48]byte
	_ [48 - unsafe.Sizeof(v4lPixFormat{})]byte
	_ [unsafe.Sizeof(v4lFormat{}) - (200 + unsafe.Sizeof(uintptr(0)))]byte
	_ [(200 + unsafe.Sizeof(uintptr(0))) - unsafe.Sizeof(v4lFormat{})]byte
)

var (
	v4lIoctlQueryCap    = v4lIOC(v4lIOCRead, 0, unsafe.Sizeof(v4lCapability{}))
	v4lIoctlEnumFmt     = v4lIOC(v4lIOCRead|v4lIOCWrite, 2, unsafe.Sizeof(v4lFmtDesc{}))
	v4lIoctlGetFmt      = v4lIOC(v4lIOCRead|v4lIOCWrite, 4, unsafe.Sizeof(v4lFormat{}))
	v4lIoctlEnumSizes   = v4lIOC(v4lIOCRead|v4lIOCWrite, 74, unsafe.Sizeof(v4lFrmSizeEnum{}))
	v4lIoctlEnumIntervs = v4lIOC(v4lIOCRead|v4lIOCWrite, 75, unsafe.Sizeof(v4lFrmIvalEnum{}))
)

const (
	v4lBufTypeVideoCapture = 1
	v4lFrmTypeDiscrete     = 1
	v4lFrmTypeContinuous   = 2
	v4lFrmTypeStepwise     = 3
	// v4lMaxEnum bounds every enumeration: a buggy driver that never
	// answers EINVAL must not hang `framepush devices`.
	v4lMaxEnum = 512
)

func v4lIoctl(fd int, req uintptr, arg unsafe.Pointer) error {
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

func v4lCString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// Probe opens path, queries it and closes it again.
func (v4lLinux) Probe(path string) (CameraInfo, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return CameraInfo{}, &v4lPathError{"open", path, err}
	}
	defer unix.Close(fd)
	var cp v4lCapability
	if err := v4lIoctl(fd, v4lIoctlQueryCap, unsafe.Pointer(&cp)); err != nil {
		if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EINVAL) {
			return CameraInfo{}, fmt.Errorf("%s is not a V4L2 device", path)
		}
		return CameraInfo{}, &v4lPathError{"query capabilities of", path, err}
	}
	caps := cp.Capabilities
	if caps&v4lCapDeviceCaps != 0 {
		// A node's own capabilities; Capabilities covers the whole device,
		// so a UVC metadata node would pass for a camera (the library's
		// Open makes that mistake).
		caps = cp.DeviceCaps
	}
	info := CameraInfo{
		Driver: v4lCString(cp.Driver[:]), Card: v4lCString(cp.Card[:]), Bus: v4lCString(cp.BusInfo[:]),
		Caps: caps, Capture: camCaptureCaps(caps),
	}
	if info.Capture {
		info.Formats = v4lEnumFormats(fd)
	}
	return info, nil
}

func init() { camControls = v4lListControls }

// v4lListControls opens a capture node through the library only to read
// its controls (no buffers are mapped, so Close is safe), sorted by name.
func v4lListControls(path string) []CameraControl {
	cam, err := webcam.Open(path)
	if err != nil {
		return nil
	}
	d := &v4lWebcam{cam: cam}
	ctrls := d.Controls()
	cam.Close()
	out := make([]CameraControl, 0, len(ctrls))
	for _, c := range ctrls {
		out = append(out, CameraControl{Name: v4lControlName(c.Name), Kind: c.Kind, Min: c.Min, Max: c.Max})
	}
	slices.SortFunc(out, func(a, b CameraControl) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func v4lEnumFormats(fd int) []CameraFormat {
	var out []CameraFormat
	for i := uint32(0); i < v4lMaxEnum; i++ {
		d := v4lFmtDesc{Index: i, Type: v4lBufTypeVideoCapture}
		if v4lIoctl(fd, v4lIoctlEnumFmt, unsafe.Pointer(&d)) != nil {
			break
		}
		out = append(out, CameraFormat{
			FourCC:      camFourCC(d.PixelFormat),
			Description: v4lCString(d.Description[:]),
			Sizes:       v4lEnumSizes(fd, d.PixelFormat),
		})
	}
	return out
}

func v4lEnumSizes(fd int, pixfmt uint32) []CameraSize {
	var out []CameraSize
	for i := uint32(0); i < v4lMaxEnum; i++ {
		e := v4lFrmSizeEnum{Index: i, PixelFormat: pixfmt}
		if v4lIoctl(fd, v4lIoctlEnumSizes, unsafe.Pointer(&e)) != nil {
			break
		}
		var s CameraSize
		switch e.Type {
		case v4lFrmTypeDiscrete:
			s = CameraSize{Width: e.Union[0], Height: e.Union[1]}
		case v4lFrmTypeContinuous, v4lFrmTypeStepwise:
			u := e.Union
			s = CameraSize{Range: true, MinWidth: u[0], Width: u[1], StepWidth: u[2], MinHeight: u[3], Height: u[4], StepHeight: u[5]}
		default:
			continue
		}
		s.Rates = v4lEnumRates(fd, pixfmt, s.Width, s.Height)
		out = append(out, s)
		if s.Range {
			break // a range is the only entry
		}
	}
	return out
}

func v4lEnumRates(fd int, pixfmt, w, h uint32) []CameraRate {
	var out []CameraRate
	for i := uint32(0); i < v4lMaxEnum; i++ {
		e := v4lFrmIvalEnum{Index: i, PixelFormat: pixfmt, Width: w, Height: h}
		if v4lIoctl(fd, v4lIoctlEnumIntervs, unsafe.Pointer(&e)) != nil {
			break
		}
		u := e.Union
		switch e.Type {
		case v4lFrmTypeDiscrete:
			if u[0] != 0 && u[1] != 0 {
				out = append(out, CameraRate{Num: u[0], Den: u[1]})
			}
		case v4lFrmTypeContinuous, v4lFrmTypeStepwise:
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

func v4lGetFormat(fd int) (v4lPixFormat, error) {
	f := v4lFormat{Type: v4lBufTypeVideoCapture}
	if err := v4lIoctl(fd, v4lIoctlGetFmt, unsafe.Pointer(&f)); err != nil {
		return v4lPixFormat{}, err
	}
	return f.Pix, nil
}

// --- streaming through the library ---

// v4lWebcam wraps *webcam.Webcam. Each method documents the library edge
// it covers (github.com/blackjack/webcam v0.6.1).
type v4lWebcam struct {
	cam *webcam.Webcam
	// side is a second descriptor on the same node, for VIDIOC_G_FMT: the
	// library keeps its own private and offers no read-back, and the V4L2
	// format is per device, not per open file.
	side   int
	closed bool
}

// Open opens the node for streaming. The library opens O_NONBLOCK, which
// is what makes Dequeue non-blocking (DQBUF answers EAGAIN when empty).
func (v4lLinux) Open(path string) (v4lDevice, error) {
	cam, err := webcam.Open(path)
	if err != nil {
		return nil, &v4lPathError{"open", path, err}
	}
	side, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		cam.Close()
		return nil, &v4lPathError{"open", path, err}
	}
	return &v4lWebcam{cam: cam, side: side}, nil
}

// SetFormat sets the format through the library, then reads back what the
// driver set: SetImageFormat returns the width and height it was given,
// not the ones the driver chose, and says nothing of bytesperline.
func (d *v4lWebcam) SetFormat(fourcc, w, h uint32) (v4lPixFormat, error) {
	if _, _, _, err := d.cam.SetImageFormat(webcam.PixelFormat(fourcc), w, h); err != nil {
		return v4lPixFormat{}, err
	}
	pix, err := v4lGetFormat(d.side)
	if err != nil {
		return v4lPixFormat{}, fmt.Errorf("read back the format: %w", err)
	}
	return pix, nil
}

func (d *v4lWebcam) SetFPS(fps float64) (float64, error) {
	if err := d.cam.SetFramerate(float32(fps)); err != nil {
		return 0, err
	}
	got, err := d.cam.GetFramerate()
	if err != nil {
		return 0, nil // set, but the driver does not say what it chose
	}
	return float64(got), nil
}

func (d *v4lWebcam) Controls() []v4lControl {
	m := d.cam.GetControls()
	out := make([]v4lControl, 0, len(m))
	for id, c := range m {
		kind := "int"
		switch c.Type {
		case 1:
			kind = "bool"
		case 2:
			kind = "menu"
		}
		out = append(out, v4lControl{ID: uint32(id), Name: c.Name, Min: c.Min, Max: c.Max, Kind: kind})
	}
	return out
}

func (d *v4lWebcam) SetControl(id uint32, v int32) error {
	return d.cam.SetControl(webcam.ControlID(id), v)
}

// Start sets the buffer count (the library's default is 256) and starts
// streaming. When StartStreaming fails after mapping buffers, the library
// neither unmaps them nor lets Close do it (Close unmaps only when
// streaming started), and closing the descriptor does not unmap either:
// each failed attempt would pin a set of frame buffers for the life of the
// process, and a reopen loop (USB bandwidth refused: ENOSPC) would eat a
// small board's memory. So they are unmapped here.
func (d *v4lWebcam) Start(buffers int) error {
	if err := d.cam.SetBufferCount(uint32(buffers)); err != nil {
		return err
	}
	if err := d.cam.StartStreaming(); err != nil {
		v4lUnmapLeaked(d.cam)
		return err
	}
	return nil
}

// v4lWebcamBuffers returns the library's private buffer list (pointer to
// the field), found by reflection because v0.6.1 offers no other way to
// release the mappings a failed StartStreaming leaves. ok is false if the
// field is not what v0.6.1 has, e.g. after a library upgrade.
func v4lWebcamBuffers(cam *webcam.Webcam) (bufs *[][]byte, ok bool) {
	f := reflect.ValueOf(cam).Elem().FieldByName("buffers")
	if !f.IsValid() || f.Type() != reflect.TypeFor[[][]byte]() {
		return nil, false
	}
	return (*[][]byte)(unsafe.Pointer(f.UnsafeAddr())), true
}

func v4lUnmapLeaked(cam *webcam.Webcam) {
	bufs, ok := v4lWebcamBuffers(cam)
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
func (d *v4lWebcam) Wait(seconds uint32) error {
	err := d.cam.WaitForFrame(max(seconds, 1))
	var timeout *webcam.Timeout
	if errors.As(err, &timeout) {
		return errV4LTimeout
	}
	return err
}

// Dequeue uses GetFrame, never ReadFrame: ReadFrame gives the buffer back
// to the driver before returning, so the driver may be overwriting the
// slice while the caller reads it.
func (d *v4lWebcam) Dequeue() ([]byte, uint32, error) {
	data, index, err := d.cam.GetFrame()
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
		return nil, 0, errV4LAgain
	}
	return data, index, err
}

func (d *v4lWebcam) Release(index uint32) error {
	return d.cam.ReleaseFrame(index)
}

// Close closes once: the library's Close calls close(2) on every call, and
// a second close could hit a descriptor number already reused elsewhere.
func (d *v4lWebcam) Close() error {
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
// v4lUnmapLeaked relies on; tests call it.
func (v4lLinux) selfCheck() error {
	if _, ok := v4lWebcamBuffers(&webcam.Webcam{}); !ok {
		return errors.New("github.com/blackjack/webcam.Webcam has no buffers [][]byte field: the unmap after a failed StartStreaming does nothing")
	}
	return nil
}
