// Command probe is throwaway scaffolding for the emulated-board test: it
// proves, inside the qemu guest, the kernel paths the agent depends on
// (V4L2 capture from vivid through github.com/blackjack/webcam, PL061 edge
// events through periph's gpioioctl) before the agent itself exists. The
// driver runs it in arm64 and 32-bit ARM builds and parses the one
// "PROBE-RESULT {json}" line each subcommand prints.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/blackjack/webcam"
	"periph.io/x/conn/v3/driver/driverreg"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/host/v3/gpioioctl"
)

// pixYUYV is V4L2_PIX_FMT_YUYV, the fourcc 'YUYV'.
const pixYUYV = webcam.PixelFormat('Y' | 'U'<<8 | 'Y'<<16 | 'V'<<24)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: probe list | video [flags] | gpio [flags]")
		os.Exit(2)
	}
	var res map[string]any
	var err error
	switch os.Args[1] {
	case "list":
		res, err = list()
	case "video":
		res, err = video(os.Args[2:])
	case "gpio":
		res, err = edges(os.Args[2:])
	default:
		fmt.Fprintf(os.Stderr, "probe: unknown subcommand %q (want list, video or gpio)\n", os.Args[1])
		os.Exit(2)
	}
	if res == nil {
		res = map[string]any{}
	}
	res["ok"] = err == nil
	if err != nil {
		res["error"] = err.Error()
	}
	b, _ := json.Marshal(res)
	fmt.Printf("PROBE-RESULT %s\n", b)
	if err != nil {
		os.Exit(1)
	}
}

// list reports every V4L2 node with its formats and every GPIO chip with
// its label and line count.
func list() (map[string]any, error) {
	nodes, _ := filepath.Glob("/dev/video*")
	var cams []map[string]any
	for _, n := range nodes {
		cam, err := webcam.Open(n)
		if err != nil {
			cams = append(cams, map[string]any{"path": n, "error": err.Error()})
			continue
		}
		name, _ := cam.GetName()
		var formats []string
		for _, desc := range cam.GetSupportedFormats() {
			formats = append(formats, desc)
		}
		sort.Strings(formats)
		cam.Close()
		cams = append(cams, map[string]any{"path": n, "name": name, "formats": formats})
	}
	if _, err := driverreg.Init(); err != nil {
		return map[string]any{"cameras": cams}, fmt.Errorf("periph init: %w", err)
	}
	var chips []map[string]any
	for _, c := range gpioioctl.Chips {
		chips = append(chips, map[string]any{"path": c.Path(), "name": c.Name(), "label": c.Label(), "lines": c.LineCount()})
	}
	return map[string]any{"cameras": cams, "chips": chips}, nil
}

// video streams YUYV frames and checks each one's length and that the
// driver's test pattern is not blank.
func video(args []string) (map[string]any, error) {
	fs := flag.NewFlagSet("video", flag.ExitOnError)
	dev := fs.String("dev", "/dev/video0", "V4L2 device")
	width := fs.Uint("width", 640, "width in pixels")
	height := fs.Uint("height", 480, "height in pixels")
	frames := fs.Int("frames", 5, "frames to capture")
	fps := fs.Float64("fps", 25, "frame rate asked of the driver")
	fs.Parse(args)

	cam, err := webcam.Open(*dev)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", *dev, err)
	}
	defer cam.Close()
	f, w, h, err := cam.SetImageFormat(pixYUYV, uint32(*width), uint32(*height))
	if err != nil {
		return nil, fmt.Errorf("set YUYV %dx%d: %w", *width, *height, err)
	}
	if f != pixYUYV || w != uint32(*width) || h != uint32(*height) {
		return nil, fmt.Errorf("driver chose format %#x %dx%d, asked YUYV %dx%d", uint32(f), w, h, *width, *height)
	}
	if err := cam.SetFramerate(float32(*fps)); err != nil {
		return nil, fmt.Errorf("set %g fps: %w", *fps, err)
	}
	if err := cam.SetBufferCount(4); err != nil {
		return nil, err
	}
	if err := cam.StartStreaming(); err != nil {
		return nil, err
	}
	want := int(w * h * 2)
	start := time.Now()
	got := 0
	for got < *frames {
		if err := cam.WaitForFrame(5); err != nil {
			return nil, fmt.Errorf("wait for frame %d: %w", got+1, err)
		}
		buf, err := cam.ReadFrame()
		if err != nil {
			return nil, fmt.Errorf("read frame %d: %w", got+1, err)
		}
		if len(buf) == 0 {
			continue // dequeued nothing (EAGAIN): poll again
		}
		if len(buf) != want {
			return nil, fmt.Errorf("frame %d is %d bytes, want %d (YUYV %dx%d)", got+1, len(buf), want, w, h)
		}
		if blank(buf) {
			return nil, fmt.Errorf("frame %d is uniform: the test pattern did not arrive", got+1)
		}
		got++
	}
	took := time.Since(start)
	return map[string]any{"frames": got, "bytes": want, "fps": float64(got) / took.Seconds()}, nil
}

func blank(b []byte) bool {
	for _, c := range b {
		if c != b[0] {
			return false
		}
	}
	return true
}

// edges opens a chip by label and counts edges on one line for a fixed
// time, so the host can check the count against the pulses it sent (and
// see spurious edges too). It prints "PROBE-READY" once the line is
// requested: the host pulses only after that.
func edges(args []string) (map[string]any, error) {
	fs := flag.NewFlagSet("gpio", flag.ExitOnError)
	label := fs.String("chip", "9030000.pl061", "GPIO chip label")
	offset := fs.Int("offset", 3, "line offset on the chip")
	edge := fs.String("edge", "rising", "rising, falling or both")
	listen := fs.Duration("for", 10*time.Second, "how long to count edges")
	fs.Parse(args)

	edges := map[string]gpio.Edge{"rising": gpio.RisingEdge, "falling": gpio.FallingEdge, "both": gpio.BothEdges}
	e, ok := edges[*edge]
	if !ok {
		return nil, fmt.Errorf("edge %q: want rising, falling or both", *edge)
	}
	if _, err := driverreg.Init(); err != nil {
		return nil, fmt.Errorf("periph init: %w", err)
	}
	var chip *gpioioctl.GPIOChip
	for _, c := range gpioioctl.Chips {
		if c.Label() == *label {
			chip = c
		}
	}
	if chip == nil {
		return nil, fmt.Errorf("no GPIO chip labelled %q", *label)
	}
	line := chip.ByNumber(*offset)
	if line == nil {
		return nil, fmt.Errorf("chip %s has no line %d", *label, *offset)
	}
	if err := line.In(gpio.PullNoChange, e); err != nil {
		return nil, fmt.Errorf("request %s line %d: %w", *label, *offset, err)
	}
	defer line.Close()
	fmt.Println("PROBE-READY")
	deadline := time.Now().Add(*listen)
	n := 0
	for {
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		if line.WaitForEdge(left) {
			n++
		}
	}
	return map[string]any{"edges": n, "chip": chip.Path(), "edge": *edge}, nil
}
