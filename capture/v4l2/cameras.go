package v4l2

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// CameraInfo describes one V4L2 device node, as `framepush devices` shows
// it: the `v4l2-ctl --list-devices --list-formats-ext` view.
type CameraInfo struct {
	Path   string   // the node, e.g. /dev/video0
	Links  []string // stable /dev/v4l/by-id/... and /dev/v4l/by-path/... links to it
	Driver string   // kernel driver, e.g. uvcvideo
	Card   string   // device name, e.g. "HD Pro Webcam C920"
	Bus    string   // bus location, e.g. usb-0000:01:00.0-1.2
	Caps   uint32   // the node's V4L2 capabilities (device_caps)
	// Capture is true when the V4L2 source can stream from the node:
	// single-planar video capture with streaming I/O.
	Capture  bool
	Formats  []CameraFormat  // formats of a capture node
	Controls []CameraControl // controls of a capture node, by the names source.controls takes
	Err      string          // why the node could not be queried; empty when it could
}

// CameraControl is one camera control, named as source.controls takes it
// (brightness, exposure_time_absolute, white_balance_automatic, ...).
type CameraControl struct {
	Name     string
	Kind     string // int, bool or menu
	Min, Max int32
}

// probeControls lists a capture node's controls; nil where V4L2 is missing.
// Set by v4l2_linux.go.
var probeControls func(path string) []CameraControl

// CameraFormat is one pixel format a capture node offers.
type CameraFormat struct {
	FourCC      string // e.g. MJPG, YUYV
	Description string // the driver's name for it, e.g. Motion-JPEG
	Sizes       []CameraSize
}

// CameraSize is a frame size, or a range of them when Range is set.
type CameraSize struct {
	Width, Height uint32 // the size; for a range the largest
	// Range marks a stepwise (or, with steps of 1, continuous) range from
	// MinWidth x MinHeight to Width x Height.
	Range                 bool
	MinWidth, MinHeight   uint32
	StepWidth, StepHeight uint32
	Rates                 []CameraRate // for a range: the rates at the largest size
}

// CameraRate is a frame interval Num/Den seconds (1/30 is 30 fps), or a
// range of them from Num/Den (fastest) to MaxNum/MaxDen (slowest).
type CameraRate struct {
	Num, Den       uint32
	Range          bool
	MaxNum, MaxDen uint32
}

// FPS is the frame rate of the interval Num/Den (for a range the fastest).
func (r CameraRate) FPS() float64 { return rateFPS(r.Num, r.Den) }

// MinFPS is the slowest frame rate of a range (FPS for a single rate).
func (r CameraRate) MinFPS() float64 {
	if !r.Range {
		return r.FPS()
	}
	return rateFPS(r.MaxNum, r.MaxDen)
}

func rateFPS(num, den uint32) float64 {
	if num == 0 {
		return 0
	}
	return float64(den) / float64(num)
}

// Contains reports whether w x h is one of the sizes s stands for.
func (s CameraSize) Contains(w, h uint32) bool {
	if !s.Range {
		return w == s.Width && h == s.Height
	}
	on := func(v, lo, hi, step uint32) bool {
		if v < lo || v > hi {
			return false
		}
		return step <= 1 || (v-lo)%step == 0
	}
	return on(w, s.MinWidth, s.Width, s.StepWidth) && on(h, s.MinHeight, s.Height, s.StepHeight)
}

// V4L2 capability bits (linux/videodev2.h) that tell what a node is.
const (
	capVideoCapture       = 0x00000001
	capVideoOutput        = 0x00000002
	capVideoCaptureMplane = 0x00001000
	capVideoOutputMplane  = 0x00002000
	capVideoM2MMplane     = 0x00004000
	capVideoM2M           = 0x00008000
	capMetaCapture        = 0x00800000
	capStreaming          = 0x04000000
	capDeviceCaps         = 0x80000000
)

// Kind says in words what the node is, for listings and error messages.
// UVC cameras have a second "metadata" node, and the Raspberry Pi exposes
// codec and ISP nodes that are not cameras: both confuse users who try
// them as a camera.
func (c CameraInfo) Kind() string {
	switch caps := c.Caps; {
	case caps&(capVideoM2M|capVideoM2MMplane) != 0:
		return "memory-to-memory device (codec or ISP), not a camera"
	case caps&capVideoCapture != 0 && caps&capStreaming == 0:
		return "video capture without streaming I/O (not supported)"
	case caps&capVideoCapture != 0:
		return "video capture"
	case caps&capVideoCaptureMplane != 0:
		return "multi-planar video capture (not supported by the V4L2 source; use the command source, e.g. rpicam-vid)"
	case caps&capMetaCapture != 0:
		return "metadata node, not a camera (the camera's image node is usually the one before it)"
	case caps&(capVideoOutput|capVideoOutputMplane) != 0:
		return "video output, not a camera"
	case caps == 0:
		return "unknown"
	}
	return fmt.Sprintf("not a video capture device (capabilities %#08x)", c.Caps)
}

// captureCaps reports whether caps describe a node the V4L2 source can use.
func captureCaps(caps uint32) bool {
	return caps&capVideoCapture != 0 && caps&capStreaming != 0 &&
		caps&(capVideoM2M|capVideoM2MMplane) == 0
}

// ListCameras returns every /dev/video* node, in numeric order, with its
// stable links, driver, card, bus and, for capture nodes, the formats,
// sizes and frame rates it offers. A node that cannot be queried (no
// permission, vanished) is listed with Err set. Without any camera the
// list is empty and the error nil.
func ListCameras() ([]CameraInfo, error) {
	return listCameras("/dev", defaultSystem)
}

// listCameras is ListCameras over a given /dev directory and kernel interface,
// so tests can feed both.
func listCameras(devDir string, sys system) ([]CameraInfo, error) {
	entries, err := os.ReadDir(devDir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return []CameraInfo{}, nil
		}
		return nil, fmt.Errorf("capture: list cameras: %w", err)
	}
	var nums []int
	for _, e := range entries {
		if n, ok := nodeNumber(e.Name()); ok {
			nums = append(nums, n)
		}
	}
	slices.Sort(nums)
	links := deviceLinks(devDir)
	cams := make([]CameraInfo, 0, len(nums))
	for _, n := range nums {
		path := filepath.Join(devDir, "video"+strconv.Itoa(n))
		var info CameraInfo
		if sys == nil {
			info.Err = "V4L2 needs Linux"
		} else if info, err = sys.Probe(path); err != nil {
			info = CameraInfo{Err: err.Error()}
		} else if info.Capture && probeControls != nil && sys == defaultSystem {
			info.Controls = probeControls(path)
		}
		info.Path = path
		real, err := filepath.EvalSymlinks(path)
		if err != nil {
			real = path
		}
		info.Links = links[real]
		cams = append(cams, info)
	}
	return cams, nil
}

// nodeNumber parses "video<N>".
func nodeNumber(name string) (int, bool) {
	digits, ok := strings.CutPrefix(name, "video")
	if !ok || digits == "" {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 0 || strconv.Itoa(n) != digits {
		return 0, false
	}
	return n, true
}

// deviceLinks maps each resolved node path to the udev links in
// <devDir>/v4l/by-id and by-path that point at it. Those links survive
// replugging and renumbering, so they are what a config should name.
func deviceLinks(devDir string) map[string][]string {
	m := make(map[string][]string)
	for _, sub := range []string{"by-id", "by-path"} {
		dir := filepath.Join(devDir, "v4l", sub)
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			link := filepath.Join(dir, e.Name())
			target, err := filepath.EvalSymlinks(link)
			if err != nil {
				continue
			}
			m[target] = append(m[target], link)
		}
	}
	return m
}

// String renders the size for `framepush devices`; see sizeString.
func (s CameraSize) String() string { return sizeString(s) }

// sizeString renders a size and its rates, e.g. "1280x720 @ 30, 15 fps".
func sizeString(s CameraSize) string {
	var b strings.Builder
	if s.Range {
		fmt.Fprintf(&b, "%dx%d to %dx%d, step %dx%d", s.MinWidth, s.MinHeight, s.Width, s.Height, s.StepWidth, s.StepHeight)
	} else {
		fmt.Fprintf(&b, "%dx%d", s.Width, s.Height)
	}
	if len(s.Rates) > 0 {
		b.WriteString(" @ ")
		b.WriteString(ratesString(s.Rates))
	}
	return b.String()
}

// ratesString renders rates, e.g. "30, 15, 7.5 fps" or "1-30 fps".
func ratesString(rates []CameraRate) string {
	parts := make([]string, len(rates))
	for i, r := range rates {
		if r.Range {
			parts[i] = fpsString(r.MinFPS()) + "-" + fpsString(r.FPS())
		} else {
			parts[i] = fpsString(r.FPS())
		}
	}
	return strings.Join(parts, ", ") + " fps"
}

// fpsString renders a rate with at most two decimals: 30, 7.5, 29.97.
func fpsString(fps float64) string {
	return strconv.FormatFloat(float64(int64(fps*100+0.5))/100, 'f', -1, 64)
}

// offers renders every format on one line each, for error messages
// that must tell the user what the camera can do.
func offers(formats []CameraFormat) string {
	if len(formats) == 0 {
		return "  (the driver lists no formats)"
	}
	lines := make([]string, len(formats))
	for i, f := range formats {
		sizes := make([]string, len(f.Sizes))
		for j, s := range f.Sizes {
			sizes[j] = sizeString(s)
		}
		if len(sizes) == 0 {
			sizes = []string{"sizes not listed"}
		}
		lines[i] = fmt.Sprintf("  %s (%s): %s", f.FourCC, f.Description, strings.Join(sizes, "; "))
	}
	return strings.Join(lines, "\n")
}

// fourCC renders a V4L2 pixel format code as its four characters.
func fourCC(code uint32) string {
	b := []byte{byte(code), byte(code >> 8), byte(code >> 16), byte(code >> 24)}
	for i, c := range b {
		if c < 0x20 || c > 0x7E {
			b[i] = '?'
		}
	}
	return strings.TrimRight(string(b), " ")
}

// fourCCCode is the inverse of fourCC for four printable characters.
func fourCCCode(s string) uint32 {
	var b [4]byte
	copy(b[:], s+"    ")
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}
