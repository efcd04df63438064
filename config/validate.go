package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"framepush/internal/netaddr"
	"framepush/internal/tlsfiles"
	"framepush/wire"
)

// Validate checks every setting and every combination of settings, and
// returns all problems at once, each prefixed with where the value came
// from.
func (l *Loaded) Validate() error {
	v := &validator{l: l}
	c := &l.Config

	if !wire.ValidToken(c.Name) {
		v.bad("name", c.Name, "1-128 of A-Z a-z 0-9 . _ : + - (it names this device to the receiver)")
	}

	s := &c.Source
	v.oneOf("source.type", s.Type, "testpattern", "v4l2", "command", "dir")
	v.intRange("source.width", s.Width, 16, 8192)
	v.intRange("source.height", s.Height, 16, 8192)
	v.intRange("source.jpeg_quality", s.JPEGQuality, 1, 100)
	switch s.Type {
	case "v4l2":
		if s.Device == "" {
			v.fail("source.device", "source.type is v4l2 but source.device is empty (e.g. /dev/video0 or /dev/v4l/by-id/usb-...-video-index0)")
		}
		v.oneOf("source.format", s.Format, "auto", "mjpeg", "yuyv")
		v.floatRange("source.fps", s.FPS, 0.1, 240)
		v.intRange("source.buffers", s.Buffers, 2, 8)
		if s.FrameTimeout < time.Second {
			v.fail("source.frame_timeout", fmt.Sprintf("%v is too short: the V4L2 wait has whole-second resolution (want at least 1s)", s.FrameTimeout))
		}
	case "command":
		if len(s.Command) == 0 || s.Command[0] == "" {
			v.fail("source.command", "source.type is command but source.command is empty or starts with an empty program name (e.g. [rpicam-vid, -t, \"0\", --codec, mjpeg, -o, \"-\"])")
		}
		if s.FrameTimeout < 100*time.Millisecond {
			v.fail("source.frame_timeout", fmt.Sprintf("%v is too short (want at least 100ms)", s.FrameTimeout))
		}
	case "dir":
		if s.Dir == "" {
			v.fail("source.dir", "source.type is dir but source.dir is empty")
		}
	}
	v.durRange("source.reopen.initial", s.Reopen.Initial, 10*time.Millisecond, time.Hour)
	if s.Reopen.Max < s.Reopen.Initial {
		v.fail("source.reopen.max", fmt.Sprintf("%v is less than source.reopen.initial (%v)", s.Reopen.Max, s.Reopen.Initial))
	}
	if s.Reopen.GiveUp < 0 {
		v.fail("source.reopen.give_up", "must be 0 (never give up) or positive")
	}

	t := &c.Trigger
	v.oneOf("trigger.type", t.Type, "continuous", "interval", "gpio", "signal")
	switch t.Type {
	case "continuous":
		v.floatRange("trigger.fps", t.FPS, 0.001, 120)
	case "interval":
		v.durRange("trigger.interval", t.Interval, 100*time.Millisecond, 7*24*time.Hour)
	case "gpio":
		g := &t.GPIO
		switch {
		case g.Line == "" && g.Chip == "":
			v.failAt("trigger.type", "trigger.gpio", "trigger.type is gpio but no pin is set: give trigger.gpio.line (e.g. GPIO17) or trigger.gpio.chip and trigger.gpio.offset (e.g. pinctrl-rp1 and 17); `framepush devices` lists them")
		case g.Line != "" && g.Chip != "":
			v.fail("trigger.gpio.chip", "give either trigger.gpio.line or trigger.gpio.chip+offset, not both")
		case g.Chip != "" && g.Offset == nil:
			v.fail("trigger.gpio.offset", "trigger.gpio.chip is set but trigger.gpio.offset is not (the line number on that chip)")
		case g.Offset != nil && g.Chip == "":
			v.fail("trigger.gpio.chip", "trigger.gpio.offset is set but trigger.gpio.chip is not (a label like pinctrl-rp1, a name like gpiochip0, or /dev/gpiochip0)")
		}
		if g.Offset != nil && (*g.Offset < 0 || *g.Offset > 511) {
			v.bad("trigger.gpio.offset", strconv.Itoa(*g.Offset), "0 to 511")
		}
		v.oneOf("trigger.gpio.edge", g.Edge, "rising", "falling", "both")
		v.oneOf("trigger.gpio.pull", g.Pull, "up", "down", "none")
		v.durRange("trigger.gpio.debounce", g.Debounce, 0, 10*time.Second)
		v.intRange("trigger.gpio.frames", g.Frames, 1, 1000)
		if g.WhileActive {
			v.floatRange("trigger.gpio.active_fps", g.ActiveFPS, 0.01, 60)
		}
		v.intRange("trigger.gpio.pre_trigger", g.PreTrigger, 0, 300)
		if g.PreTrigger > 0 {
			v.floatRange("trigger.gpio.pre_trigger_fps", g.PreTriggerFPS, 0.01, 60)
		}
	}
	if t.Type != "gpio" {
		for _, p := range []string{"trigger.gpio.line", "trigger.gpio.chip", "trigger.gpio.offset"} {
			if l.Origin(p) != "default" {
				v.fail(p, fmt.Sprintf("a GPIO pin is set but trigger.type is %s, so it would be ignored (set trigger.type: gpio, or remove it)", t.Type))
			}
		}
	}

	sv := &c.Server
	if len(sv.Addresses) == 0 {
		v.fail("server.addresses", fmt.Sprintf("no receiver address (want e.g. [192.168.1.10:%d])", DefaultPort))
	}
	for i, a := range sv.Addresses {
		// The sender's own rule (netaddr.CheckDial), so that check and run agree.
		if err := netaddr.CheckDial(a); err != nil {
			v.failItem("server.addresses", i, err.Error())
		}
	}
	v.oneOf("server.mode", sv.Mode, "auto", "persistent", "seed")
	v.oneOf("server.terminator", sv.Terminator, "none", "lf", "crlf")
	v.oneOf("server.checksum", sv.Checksum, "sha256", "crc32c", "none")
	v.oneOf("server.spread", sv.Spread, "none", "name")
	v.durRange("server.connect_timeout", sv.ConnectTimeout, 100*time.Millisecond, 5*time.Minute)
	v.durRange("server.answer_timeout", sv.AnswerTimeout, 100*time.Millisecond, 10*time.Minute)
	if sv.MinThroughput < KiB {
		v.bad("server.min_throughput", sv.MinThroughput.String(), "at least 1KiB (bytes per second)")
	}
	v.durRange("server.backoff.initial", sv.Backoff.Initial, time.Millisecond, time.Hour)
	if sv.Backoff.Max < sv.Backoff.Initial {
		v.fail("server.backoff.max", fmt.Sprintf("%v is less than server.backoff.initial (%v)", sv.Backoff.Max, sv.Backoff.Initial))
	}
	v.floatRange("server.backoff.multiplier", sv.Backoff.Multiplier, 1, 10)
	v.intRange("server.window.frames", sv.Window.Frames, 0, 1024)
	v.intRange("server.connections", sv.Connections, 0, 64)
	if sv.Window.Frames > 1 && sv.Window.Bytes < 64*KiB {
		v.bad("server.window.bytes", sv.Window.Bytes.String(), "at least 64KiB while server.window.frames is above 1")
	}
	if (sv.TLS.Cert == "") != (sv.TLS.Key == "") {
		v.fail("server.tls.cert", "server.tls.cert and server.tls.key go together (client certificate for mTLS)")
	}
	if sv.TLS.Enabled {
		// Load the files as the sender will (tlsfiles), not only stat them:
		// a CA file without a certificate or a key that does not match the
		// certificate would otherwise pass check and stop run.
		if sv.TLS.CA != "" {
			if _, err := tlsfiles.LoadCA(sv.TLS.CA); err != nil {
				v.fail("server.tls.ca", err.Error())
			}
		}
		if sv.TLS.Cert != "" && sv.TLS.Key != "" {
			if _, err := tlsfiles.LoadKeyPair(sv.TLS.Cert, sv.TLS.Key); err != nil {
				v.fail("server.tls.cert", err.Error())
			}
		}
	} else if sv.TLS.CA != "" || sv.TLS.Cert != "" {
		v.fail("server.tls.enabled", "TLS files are set but server.tls.enabled is false")
	}

	q := &c.Queue
	v.intRange("queue.memory_frames", q.MemoryFrames, 1, 100000)
	if q.MemoryBytes < MiB {
		v.bad("queue.memory_bytes", q.MemoryBytes.String(), "at least 1MiB")
	}
	if q.SpoolMaxBytes < MiB {
		v.bad("queue.spool_max_bytes", q.SpoolMaxBytes.String(), "at least 1MiB")
	}
	v.intRange("queue.spool_max_frames", q.SpoolMaxFrames, 1, 10000000)
	if q.MaxAge < 0 {
		v.fail("queue.max_age", "must be 0 (keep forever) or positive")
	}
	v.oneOf("queue.drop", q.Drop, "oldest", "newest")
	v.intRange("queue.max_attempts", q.MaxAttempts, 0, 1000000) // 0: unlimited
	if q.AlwaysSpool && q.SpoolDir == "" {
		v.fail("queue.always_spool", "needs queue.spool_dir")
	}

	if c.HTTP.Listen != "" {
		if err := netaddr.CheckListen(c.HTTP.Listen); err != nil {
			v.fail("http.listen", err.Error()+" (or empty to turn the listener off)")
		}
	}
	v.durRange("http.healthy_within", c.HTTP.HealthyWithin, time.Second, 24*time.Hour)
	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	v.oneOf("log.format", c.Log.Format, "text", "json")
	v.durRange("shutdown.timeout", c.Shutdown.Timeout, 100*time.Millisecond, 10*time.Minute)
	return v.err()
}

type validator struct {
	l    *Loaded
	errs []error
}

func (v *validator) fail(path, msg string) { v.failAt(path, path, msg) }

// failAt reports a problem with path, located where originPath was set:
// for a missing setting, the one that made it necessary.
func (v *validator) failAt(originPath, path, msg string) {
	v.errs = append(v.errs, fmt.Errorf("config: %s: %s: %s", v.l.Origin(originPath), path, msg))
}

// failItem reports a problem with item i of the list at path, located at
// the item's own line when it came from the file.
func (v *validator) failItem(path string, i int, msg string) {
	item := fmt.Sprintf("%s[%d]", path, i)
	if _, ok := v.l.origin[item]; !ok {
		item = path
	}
	v.failAt(item, path, msg)
}

func (v *validator) bad(path, val, want string) {
	v.fail(path, fmt.Sprintf("%q is not allowed (want %s)", val, want))
}

func (v *validator) oneOf(path, val string, allowed ...string) {
	for _, a := range allowed {
		if val == a {
			return
		}
	}
	v.bad(path, val, orList(allowed))
}

func (v *validator) intRange(path string, val, lo, hi int) {
	if val < lo || val > hi {
		v.bad(path, strconv.Itoa(val), fmt.Sprintf("%d to %d", lo, hi))
	}
}

func (v *validator) floatRange(path string, val, lo, hi float64) {
	if !(val >= lo && val <= hi) {
		v.bad(path, strconv.FormatFloat(val, 'g', -1, 64), fmt.Sprintf("%g to %g", lo, hi))
	}
}

func (v *validator) durRange(path string, val, lo, hi time.Duration) {
	if val < lo || val > hi {
		v.bad(path, val.String(), fmt.Sprintf("%v to %v", lo, hi))
	}
}

func (v *validator) err() error { return errors.Join(v.errs...) }

func orList(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}
