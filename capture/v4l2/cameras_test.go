package v4l2

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// listSys answers probes from a table keyed by node name.
type listSys map[string]any // CameraInfo or error

func (s listSys) Probe(path string) (CameraInfo, error) {
	switch v := s[filepath.Base(path)].(type) {
	case CameraInfo:
		return v, nil
	case error:
		return CameraInfo{}, v
	}
	return CameraInfo{}, errors.New("unexpected probe of " + path)
}

func (listSys) Open(string) (handle, error) { return nil, errors.New("not for listing") }

var testC920 = CameraInfo{
	Driver: "uvcvideo", Card: "HD Pro Webcam C920", Bus: "usb-0000:01:00.0-1.2",
	Caps: capVideoCapture | capStreaming, Capture: true, Formats: testCamera,
}

func testDev(t *testing.T) string {
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
	dev := testDev(t)
	sys := listSys{
		"video0":  testC920,
		"video1":  CameraInfo{Driver: "uvcvideo", Card: "HD Pro Webcam C920", Bus: "usb-0000:01:00.0-1.2", Caps: capMetaCapture | capStreaming},
		"video2":  &pathError{"open", "video2", syscall.EACCES},
		"video10": CameraInfo{Driver: "bcm2835-codec", Card: "bcm2835-codec-decode", Bus: "platform:bcm2835-codec", Caps: capVideoM2MMplane | capStreaming},
	}
	cams, err := listCameras(dev, sys)
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

	// The whole listing, as `framepush devices --json` writes it, is the
	// golden file the devices table test in cmd/framepush prints from.
	got, err := json.MarshalIndent(cams, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(bytes.ReplaceAll(got, []byte(dev), []byte("/dev")), '\n')
	const golden = "testdata/cameras.json"
	if os.Getenv("FRAMEPUSH_UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("listing:\n%s\nwant (%s):\n%s", got, golden, want)
	}
}

func TestListCamerasWithoutCameras(t *testing.T) {
	for name, dev := range map[string]string{
		"empty /dev":   t.TempDir(),
		"missing /dev": filepath.Join(t.TempDir(), "nope"),
	} {
		cams, err := listCameras(dev, listSys{})
		if err != nil || cams == nil || len(cams) != 0 {
			t.Fatalf("%s: %v, %v; want an empty list and no error", name, cams, err)
		}
	}
	// The real machine: whatever it has, listing must not fail.
	if _, err := ListCameras(); err != nil {
		t.Fatalf("ListCameras: %v", err)
	}
}

func TestListCamerasWithoutV4L2(t *testing.T) {
	cams, err := listCameras(testDev(t), nil)
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
		{capVideoCapture | capStreaming, "video capture", true},
		{capVideoCapture, "without streaming I/O", false},
		{capVideoCaptureMplane | capStreaming, "multi-planar", false},
		{capMetaCapture | capStreaming, "metadata node", false},
		{capVideoM2M | capStreaming, "memory-to-memory", false},
		{capVideoCapture | capVideoOutput | capVideoM2M | capStreaming, "memory-to-memory", false},
		{capVideoOutput | capStreaming, "video output", false},
		{0x00000010, "not a video capture device (capabilities 0x00000010)", false},
	} {
		c := CameraInfo{Caps: tc.caps}
		if !strings.Contains(c.Kind(), tc.kind) || captureCaps(tc.caps) != tc.capture {
			t.Errorf("caps %#x: kind %q capture %v, want %q %v", tc.caps, c.Kind(), captureCaps(tc.caps), tc.kind, tc.capture)
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
			t.Errorf("%dx%d in %s: %v", tc.w, tc.h, sizeString(r), !tc.in)
		}
	}
	cont := CameraSize{Range: true, MinWidth: 1, MinHeight: 1, StepWidth: 1, StepHeight: 1, Width: 100, Height: 100}
	if !cont.Contains(33, 77) {
		t.Error("continuous range rejects 33x77")
	}
	if d := (CameraSize{Width: 640, Height: 480}); !d.Contains(640, 480) || d.Contains(480, 640) {
		t.Error("discrete size")
	}
	if got := ratesString([]CameraRate{{Num: 1001, Den: 30000}, {Num: 2, Den: 15}, {Num: 1, Den: 60, Range: true, MaxNum: 10, MaxDen: 1}}); got != "29.97, 7.5, 0.1-60 fps" {
		t.Errorf("rates %q", got)
	}
	for _, cc := range []string{"MJPG", "YUYV", "H264", "Y10"} {
		if got := fourCC(fourCCCode(cc)); got != cc {
			t.Errorf("fourcc %q round trip gives %q", cc, got)
		}
	}
	if fourCC(0x47504a4d) != "MJPG" || fourCC(0x01020304) != "????" {
		t.Error("fourcc rendering")
	}
}
