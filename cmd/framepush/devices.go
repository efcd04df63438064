package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"framepush/capture/gpio"
	"framepush/capture/v4l2"
)

const devicesUsage = `Usage: framepush devices [--json]

Lists what the agent can capture from and trigger on:
  - every V4L2 capture device: its /dev path, stable /dev/v4l/by-id link (use
    that one in source.device: it survives replugging), driver, card, bus,
    each pixel format with its sizes and frame rates (the view of
    "v4l2-ctl --list-formats-ext"), and its controls under the names
    source.controls takes (brightness, exposure_time_absolute, ...);
  - every GPIO chip (character device): path, name, label and its lines, by
    offset, with their names and who uses them.

Put what you see into the configuration:
  source.device: /dev/v4l/by-id/usb-...-video-index0
  source.format: mjpeg   source.width: 1280   source.height: 720   source.fps: 30
  source.controls: {brightness: 10, exposure_time_absolute: 300}
  trigger.gpio.line: GPIO17                      (a named line)
  trigger.gpio.chip: pinctrl-rp1 + trigger.gpio.offset: 17   (by chip label and offset)

Run it as the user the agent runs as (members of "video" and "gpio") to see
what the agent will see. Exit status 1 when a listing failed.

Examples:
  framepush devices
  sudo -u framepush framepush devices        # what the service sees
  framepush devices --json | jq '.cameras[].path'

Flags:
`

func runDevices(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("framepush devices", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print JSON instead of tables")
	fs.Usage = func() {
		fmt.Fprint(stderr, devicesUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	rc := 0
	cams, cerr := v4l2.ListCameras()
	if cerr != nil {
		fmt.Fprintf(stderr, "framepush devices: cameras: %v\n", cerr)
		rc = 1
	}
	chips, gerr := gpio.ListChips()
	if gerr != nil {
		fmt.Fprintf(stderr, "framepush devices: GPIO chips: %v\n", gerr)
		rc = 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			Cameras   []v4l2.CameraInfo `json:"cameras"`
			GPIOChips []gpio.Chip       `json:"gpio_chips"`
		}{cams, chips}); err != nil {
			fmt.Fprintf(stderr, "framepush devices: %v\n", err)
			return 1
		}
		return rc
	}
	fmt.Fprintln(stdout, "Cameras (V4L2):")
	if len(cams) == 0 && cerr == nil {
		fmt.Fprintln(stdout, "  none found (no /dev/video* capture device; a CSI camera on current Raspberry Pi OS\n  is used through source.type: command with rpicam-vid)")
	} else if err := formatCameras(stdout, cams); err != nil {
		fmt.Fprintf(stderr, "framepush devices: %v\n", err)
		rc = 1
	}
	fmt.Fprintln(stdout)
	fmt.Fprintln(stdout, "GPIO chips:")
	if len(chips) == 0 && gerr == nil {
		fmt.Fprintln(stdout, "  none found (no /dev/gpiochip*; GPIO triggers need the GPIO character device)")
	} else if err := formatGPIOChips(stdout, chips); err != nil {
		fmt.Fprintf(stderr, "framepush devices: %v\n", err)
		rc = 1
	}
	return rc
}
