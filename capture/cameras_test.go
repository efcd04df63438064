package capture

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// camTestSys answers probes from a table keyed by node name.
type camTestSys map[string]any // CameraInfo or error

func (s camTestSys) Probe(path string) (CameraInfo, error) {
	switch v := s[filepath.Base(path)].(type) {
	case CameraInfo:
		return v, nil
	case error:
		return CameraInfo{}, v
	}
	return CameraInfo{}, errors.New("unexpected probe of " + path)
}

func (camTestSys) Open(string) (v4lDevice, error) { return nil, errors.New("not for listing") }

var camTestC920 = CameraInfo{
	Driver: "uvcvideo", Card: "HD Pro Webcam C920", Bus: "usb-0000:01:00.0-1.2",
	Caps: v4lCapVideoCapture | v4lCapStreaming, Capture: true, Formats: v4lTestCamera,
}

func camTestDev(t *testing.T) string {
	t.Helper()
	dev := t.TempDir()
	for _, name := range []string{"video0", "video1", "video10", "video2", "videofoo", "video01", "vcsa1"} {
		if err := os.WriteFile(filepath.Join(dev, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"v4l/by-id/usb-046d_HD_Pro_Webcam_C920_A1B2-video-index0":    "../../video0",
		"v4l/by-id/usb-046d_HD_Pro_Webcam_C920_A1B2-video-index1":    "../../video1",
		"v4l/by-path/platform-xhci-hcd.0-usb-0:1.2:1.0-video-index0": "../../video0",
		"v4l/by-path/platform-dangling-video-index0":                 "../../video7",
	} {
		p := filepath.Join(dev, link)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	return dev
}

func TestListCamerasOrderLinksAndErrors(t *testing.T) {
	dev := camTestDev(t)
	sys := camTestSys{
		"video0":  camTestC920,
		"video1":  CameraInfo{Driver: "uvcvideo", Card: "HD Pro Webcam C920", Bus: "usb-0000:01:00.0-1.2", Caps: v4lCapMetaCapture | v4lCapStreaming},
		"video2":  &v4lPathError{"open", "video2", syscall.EACCES},
		"video10": CameraInfo{Driver: "bcm2835-codec", Card: "bcm2835-codec-decode", Bus: "platform:bcm2835-codec", Caps: v4lCapVideoM2MMplane | v4lCapStreaming},
	}
	cams, err := camList(dev, sys)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, c := range cams {
		paths = append(paths, filepath.Base(c.Path))
	}
	if got := strings.Join(paths, " "); got != "video0 video1 video2 video10" {
		t.Fatalf("nodes %q, want numeric order without non-nodes", got)
	}
	if len(cams[0].Links) != 2 || !strings.HasSuffix(cams[0].Links[0], "by-id/usb-046d_HD_Pro_Webcam_C920_A1B2-video-index0") ||
		!strings.HasSuffix(cams[0].Links[1], "by-path/platform-xhci-hcd.0-usb-0:1.2:1.0-video-index0") {
		t.Fatalf("video0 links %v", cams[0].Links)
	}
	if len(cams[1].Links) != 1 || len(cams[3].Links) != 0 {
		t.Fatalf("links %v / %v", cams[1].Links, cams[3].Links)
	}
	if cams[0].Path != filepath.Join(dev, "video0") || cams[0].Card != "HD Pro Webcam C920" || !cams[0].Capture {
		t.Fatalf("video0: %+v", cams[0])
	}
	if !strings.Contains(cams[2].Err, "permission denied") {
		t.Fatalf("video2 error %q", cams[2].Err)
	}

	var out bytes.Buffer
	if err := FormatCameras(&out, cams); err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(out.String(), dev, "/dev")
	want := `/dev/video0: HD Pro Webcam C920 (driver uvcvideo, bus usb-0000:01:00.0-1.2)
    link: /dev/v4l/by-id/usb-046d_HD_Pro_Webcam_C920_A1B2-video-index0
    link: /dev/v4l/by-path/platform-xhci-hcd.0-usb-0:1.2:1.0-video-index0
    MJPG (Motion-JPEG): passed through (format: mjpeg)
        1920x1080 @ 30, 24, 15 fps
        1280x720 @ 30, 15 fps
        800x600 @ 29.97, 14.99 fps
        640x480 @ 30, 7.5 fps
    YUYV (YUYV 4:2:2): encoded to JPEG (format: yuyv)
        640x480 @ 30, 15 fps
        1280x720 @ 10, 5 fps
    H264 (H.264): not usable by framepush
        1920x1080 @ 30 fps
/dev/video1: HD Pro Webcam C920 (driver uvcvideo, bus usb-0000:01:00.0-1.2)
    link: /dev/v4l/by-id/usb-046d_HD_Pro_Webcam_C920_A1B2-video-index1
    metadata node, not a camera (the camera's image node is usually the one before it)
/dev/video2: cannot query: open video2: permission denied
/dev/video10: bcm2835-codec-decode (driver bcm2835-codec, bus platform:bcm2835-codec)
    memory-to-memory device (codec or ISP), not a camera
`
	if text != want {
		t.Fatalf("FormatCameras:\n%s\nwant:\n%s", text, want)
	}
}

func TestListCamerasWithoutCameras(t *testing.T) {
	for name, dev := range map[string]string{
		"empty /dev":   t.TempDir(),
		"missing /dev": filepath.Join(t.TempDir(), "nope"),
	} {
		cams, err := camList(dev, camTestSys{})
		if err != nil || cams == nil || len(cams) != 0 {
			t.Fatalf("%s: %v, %v; want an empty list and no error", name, cams, err)
		}
	}
	var out bytes.Buffer
	FormatCameras(&out, nil)
	if !strings.Contains(out.String(), "No V4L2 cameras") {
		t.Fatalf("empty listing: %q", out.String())
	}
	// The real machine: whatever it has, listing must not fail.
	if _, err := ListCameras(); err != nil {
		t.Fatalf("ListCameras: %v", err)
	}
}

func TestListCamerasWithoutV4L2(t *testing.T) {
	cams, err := camList(camTestDev(t), nil)
	if err != nil || len(cams) != 4 || cams[0].Err != "V4L2 needs Linux" {
		t.Fatalf("%+v, %v", cams, err)
	}
}

func TestCameraKinds(t *testing.T) {
	for _, tc := range []struct {
		caps    uint32
		kind    string
		capture bool
	}{
		{v4lCapVideoCapture | v4lCapStreaming, "video capture", true},
		{v4lCapVideoCapture, "without streaming I/O", false},
		{v4lCapVideoCaptureMplane | v4lCapStreaming, "multi-planar", false},
		{v4lCapMetaCapture | v4lCapStreaming, "metadata node", false},
		{v4lCapVideoM2M | v4lCapStreaming, "memory-to-memory", false},
		{v4lCapVideoCapture | v4lCapVideoOutput | v4lCapVideoM2M | v4lCapStreaming, "memory-to-memory", false},
		{v4lCapVideoOutput | v4lCapStreaming, "video output", false},
		{0x00000010, "not a video capture device (capabilities 0x00000010)", false},
	} {
		c := CameraInfo{Caps: tc.caps}
		if !strings.Contains(c.Kind(), tc.kind) || camCaptureCaps(tc.caps) != tc.capture {
			t.Errorf("caps %#x: kind %q capture %v, want %q %v", tc.caps, c.Kind(), camCaptureCaps(tc.caps), tc.kind, tc.capture)
		}
	}
}

func TestCameraSizesAndRates(t *testing.T) {
	r := CameraSize{Range: true, MinWidth: 16, MinHeight: 16, StepWidth: 8, StepHeight: 4, Width: 1920, Height: 1080}
	for _, tc := range []struct {
		w, h uint32
		in   bool
	}{{16, 16, true}, {1920, 1080, true}, {640, 480, true}, {644, 480, false}, {640, 482, false}, {8, 16, false}, {1928, 1080, false}} {
		if r.Contains(tc.w, tc.h) != tc.in {
			t.Errorf("%dx%d in %s: %v", tc.w, tc.h, camSizeString(r), !tc.in)
		}
	}
	cont := CameraSize{Range: true, MinWidth: 1, MinHeight: 1, StepWidth: 1, StepHeight: 1, Width: 100, Height: 100}
	if !cont.Contains(33, 77) {
		t.Error("continuous range rejects 33x77")
	}
	if d := (CameraSize{Width: 640, Height: 480}); !d.Contains(640, 480) || d.Contains(480, 640) {
		t.Error("discrete size")
	}
	if got := camRatesString([]CameraRate{{Num: 1001, Den: 30000}, {Num: 2, Den: 15}, {Num: 1, Den: 60, Range: true, MaxNum: 10, MaxDen: 1}}); got != "29.97, 7.5, 0.1-60 fps" {
		t.Errorf("rates %q", got)
	}
	for _, cc := range []string{"MJPG", "YUYV", "H264", "Y10"} {
		if got := camFourCC(camFourCCCode(cc)); got != cc {
			t.Errorf("fourcc %q round trip gives %q", cc, got)
		}
	}
	if camFourCC(0x47504a4d) != "MJPG" || camFourCC(0x01020304) != "????" {
		t.Error("fourcc rendering")
	}
}

func TestFormatCamerasListsControls(t *testing.T) {
	cams := []CameraInfo{{
		Path: "/dev/video0", Card: "Cam", Driver: "uvcvideo", Bus: "usb-1", Capture: true,
		Formats:  []CameraFormat{{FourCC: "MJPG", Description: "Motion-JPEG", Sizes: []CameraSize{{Width: 640, Height: 480, Rates: []CameraRate{{Num: 1, Den: 30}}}}}},
		Controls: []CameraControl{{Name: "brightness", Kind: "int", Min: -64, Max: 64}, {Name: "white_balance_automatic", Kind: "bool", Min: 0, Max: 1}},
	}}
	var out strings.Builder
	if err := FormatCameras(&out, cams); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"    controls (source.controls):\n", "        brightness (int -64..64)\n", "        white_balance_automatic (bool 0..1)\n"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
}
