// Command framepush is the camera agent: it captures frames (V4L2 camera,
// CSI camera through a command, test pattern, folder) continuously, on a
// timer or on a GPIO edge, and pushes each one to a receiver over TCP with
// the SIZE / GOT SIZE handshake, keeping every frame queued (in RAM, then
// on disk) until the receiver acknowledged it.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"framepush/internal/version"
)

const usage = `framepush: capture frames and push them to a receiver over TCP.

Usage:
  framepush [run] [--config FILE] [--set key=value]...   run the agent (default)
  framepush send [--server HOST:PORT] FILE...            send files once, exit 0 when all acknowledged
  framepush deadletters list|resend [ID...]              frames the receiver refused too often: list, send again
  framepush devices                                      list cameras (formats, sizes, rates) and GPIO chips
  framepush config check [FILE]                          validate a config and print the effective settings
  framepush config example                               print the commented example config
  framepush version                                      print the version

Examples:
  # Demo on any machine, no camera: built-in test pattern at 1 frame/s to a
  # receiver on this machine (start one with: framerecv --dir ./frames)
  framepush

  # A USB camera, 2 frames/s, to a server on the LAN
  framepush run --set source.type=v4l2 --set trigger.fps=2 --set server.addresses=192.168.1.10:7400

  # A button on GPIO17 (pin 11) to GND: 3 frames per press
  framepush run --set source.type=v4l2 --set trigger.type=gpio --set trigger.gpio.line=GPIO17 \
                --set trigger.gpio.pull=up --set trigger.gpio.edge=falling --set trigger.gpio.frames=3

  # The installed service reads /etc/framepush/framepush.yaml
  framepush config check /etc/framepush/framepush.yaml

Every setting can also come from the environment: FRAMEPUSH_<KEY_PATH>,
e.g. FRAMEPUSH_SERVER_ADDRESSES=10.0.0.5:7400,10.0.0.6:7400.
Run "framepush <command> --help" for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		return runAgent(args, stdout, stderr)
	case "send":
		ctx, stop := sendSignalContext(stderr)
		defer stop()
		return runSend(ctx, args, stdout, stderr)
	case "deadletters":
		ctx, stop := sendSignalContext(stderr) // a first signal stops, a second ends it
		defer stop()
		return runDeadLetters(ctx, args, stdout, stderr)
	case "devices":
		return runDevices(args, stdout, stderr)
	case "config":
		return runConfig(args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, version.String("framepush"))
		return 0
	case "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "framepush: unknown command %q\n\n%s", cmd, usage)
	return 2
}
