package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"framepush/capture/gpio"
	"framepush/capture/v4l2"
)

func TestFormatCamerasListsControls(t *testing.T) {
	cams := []v4l2.CameraInfo{{
		Path: "/dev/video0", Card: "Cam", Driver: "uvcvideo", Bus: "usb-1", Capture: true,
		Formats:  []v4l2.CameraFormat{{FourCC: "MJPG", Description: "Motion-JPEG", Sizes: []v4l2.CameraSize{{Width: 640, Height: 480, Rates: []v4l2.CameraRate{{Num: 1, Den: 30}}}}}},
		Controls: []v4l2.CameraControl{{Name: "brightness", Kind: "int", Min: -64, Max: 64}, {Name: "white_balance_automatic", Kind: "bool", Min: 0, Max: 1}},
	}}
	var out strings.Builder
	if err := formatCameras(&out, cams); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"    controls (source.controls):\n", "        brightness (int -64..64)\n", "        white_balance_automatic (bool 0..1)\n"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// The table of this machine's chips (none is a valid answer) is not empty.
func TestFormatGPIOChipsOnThisMachine(t *testing.T) {
	chips, err := gpio.ListChips()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := formatGPIOChips(&b, chips); err != nil {
		t.Fatal(err)
	}
	if b.Len() == 0 {
		t.Fatal("no output")
	}
}

func TestFormatGPIOChips(t *testing.T) {
	chips := []gpio.Chip{
		{Path: "/dev/gpiochip0", Name: "gpiochip0", Label: "pinctrl-rp1", Lines: []gpio.LineInfo{
			{Offset: 0, Name: "ID_SDA"},
			{Offset: 17, Name: "GPIO17", Consumer: "framepush@812", Used: true},
		}},
		{Path: "/dev/gpiochip1", Name: "gpiochip1", Label: "9030000.pl061", Lines: []gpio.LineInfo{
			{Offset: 0}, {Offset: 3},
		}},
	}
	var b bytes.Buffer
	if err := formatGPIOChips(&b, chips); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"/dev/gpiochip0", `label "pinctrl-rp1"`, "/dev/gpiochip1", `label "9030000.pl061"`,
		"line: NAME", "chip: LABEL", "offset: N", `used by "framepush@812"`, "ID_SDA", "free",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Unnamed lines show "-" with their offset.
	found := false
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "3" && f[1] == "-" && f[2] == "free" {
			found = true
		}
	}
	if !found {
		t.Errorf("no row for unnamed line 3:\n%s", out)
	}

	b.Reset()
	if err := formatGPIOChips(&b, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "no chips") {
		t.Errorf("empty listing: %q", b.String())
	}
}

func ExampleformatGPIOChips() {
	formatGPIOChips(os.Stdout, []gpio.Chip{{Path: "/dev/gpiochip0", Name: "gpiochip0", Label: "9030000.pl061", Lines: []gpio.LineInfo{
		{Offset: 0}, {Offset: 1, Name: "GPIO17", Consumer: "framepush@812", Used: true},
	}}})
	// Output:
	// GPIO chips. In the config, name a trigger line as `line: NAME` (named lines only)
	// or as `chip: LABEL` plus `offset: N` (any line; the label survives gpiochipN renumbering).
	//
	// /dev/gpiochip0  name gpiochip0  label "9030000.pl061"  2 lines
	//   offset  name    state
	//   0       -       free
	//   1       GPIO17  used by "framepush@812"
}

// TestFormatCamerasTable prints the listing v4l2's
// TestListCamerasOrderLinksAndErrors produced (its golden file).
func TestFormatCamerasTable(t *testing.T) {
	b, err := os.ReadFile("../../capture/v4l2/testdata/cameras.json")
	if err != nil {
		t.Fatal(err)
	}
	var cams []v4l2.CameraInfo
	if err := json.Unmarshal(b, &cams); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := formatCameras(&out, cams); err != nil {
		t.Fatal(err)
	}
	text := out.String()
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

	out.Reset()
	formatCameras(&out, nil)
	if !strings.Contains(out.String(), "No V4L2 cameras") {
		t.Fatalf("empty listing: %q", out.String())
	}
}
