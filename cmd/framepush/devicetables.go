package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"framepush/capture/gpio"
	"framepush/capture/v4l2"
)

// The tables `framepush devices` prints; the listing itself is
// v4l2.ListCameras and gpio.ListChips.

// formatCameras prints cams the way `framepush devices` shows them.
func formatCameras(w io.Writer, cams []v4l2.CameraInfo) error {
	var b strings.Builder
	if len(cams) == 0 {
		b.WriteString("No V4L2 cameras (no /dev/video* nodes).\n")
	}
	for _, c := range cams {
		b.WriteString(c.Path)
		if c.Err != "" {
			fmt.Fprintf(&b, ": cannot query: %s\n", c.Err)
			continue
		}
		fmt.Fprintf(&b, ": %s (driver %s, bus %s)\n", c.Card, c.Driver, c.Bus)
		for _, l := range c.Links {
			fmt.Fprintf(&b, "    link: %s\n", l)
		}
		if !c.Capture {
			fmt.Fprintf(&b, "    %s\n", c.Kind())
			continue
		}
		if len(c.Formats) == 0 {
			b.WriteString("    no formats listed by the driver\n")
		}
		for _, f := range c.Formats {
			fmt.Fprintf(&b, "    %s (%s)%s\n", f.FourCC, f.Description, formatNote(f.FourCC))
			if len(f.Sizes) == 0 {
				b.WriteString("        sizes not listed by the driver\n")
			}
			for _, s := range f.Sizes {
				fmt.Fprintf(&b, "        %s\n", s.String())
			}
		}
		if len(c.Controls) > 0 {
			b.WriteString("    controls (source.controls):\n")
			for _, k := range c.Controls {
				fmt.Fprintf(&b, "        %s (%s %d..%d)\n", k.Name, k.Kind, k.Min, k.Max)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// formatNote says how the V4L2 source treats a format.
func formatNote(fourcc string) string {
	switch fourcc {
	case "MJPG", "JPEG":
		return ": passed through (format: mjpeg)"
	case "YUYV":
		return ": encoded to JPEG (format: yuyv)"
	}
	return ": not usable by framepush"
}

// formatGPIOChips writes chips as a human-readable table: one header line
// per chip (path, name, label, line count) and one row per line (offset,
// name or "-", free or the consumer holding it), preceded by how to name a
// line in the configuration.
func formatGPIOChips(w io.Writer, chips []gpio.Chip) error {
	if len(chips) == 0 {
		_, err := fmt.Fprintln(w, "GPIO: no chips found (no /dev/gpiochip* character devices).")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GPIO chips. In the config, name a trigger line as `line: NAME` (named lines only)")
	fmt.Fprintln(tw, "or as `chip: LABEL` plus `offset: N` (any line; the label survives gpiochipN renumbering).")
	for _, c := range chips {
		fmt.Fprintf(tw, "\n%s  name %s  label %q  %d lines\n", c.Path, c.Name, c.Label, len(c.Lines))
		fmt.Fprintln(tw, "  offset\tname\tstate")
		for _, l := range c.Lines {
			name := l.Name
			if name == "" {
				name = "-"
			}
			state := "free"
			if l.Used {
				state = "used"
				if l.Consumer != "" {
					state += " by " + strconv.Quote(l.Consumer)
				}
			}
			fmt.Fprintf(tw, "  %d\t%s\t%s\n", l.Offset, name, state)
		}
	}
	return tw.Flush()
}
