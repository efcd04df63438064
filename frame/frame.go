// Package frame holds what every stage of the pipeline passes on: one
// captured, encoded image and its typed kinds. It is the leaf of the
// project's import graph: capture produces Frames, queue holds them, sender
// delivers them, and none of those has to import another stage (or a camera
// or GPIO library) to name one. It imports no project package.
package frame

import "time"

// Frame is one captured, encoded image. Data is owned by the Frame: it never
// aliases a driver buffer, so it stays valid after the source moves on or is
// closed.
type Frame struct {
	Data    []byte      // complete encoded image (JPEG unless Format says otherwise)
	Format  Format      // JPEG, PNG or Bin
	Seq     uint64      // per-source sequence number, strictly increasing from 1
	Time    time.Time   // capture time: when the frame was taken from the device
	Source  string      // source kind and device, e.g. "v4l2:/dev/video0"
	Trigger TriggerKind // what caused it
}

// Format is the encoding of a Frame's Data. Its string is what the spool
// header and the logs carry.
type Format string

// Formats.
const (
	JPEG Format = "jpeg"
	PNG  Format = "png"
	Bin  Format = "bin" // anything else, stored as is
)

// TriggerKind says what caused a frame (or a trigger event). Its string is
// what the spool header, the logs and the trigger.type config key carry.
type TriggerKind string

// Trigger kinds.
const (
	Continuous TriggerKind = "continuous"  // a steady frame rate
	Interval   TriggerKind = "interval"    // one frame every period (timelapse)
	GPIO       TriggerKind = "gpio"        // an edge on a GPIO input
	Signal     TriggerKind = "signal"      // SIGUSR1 (or another signal)
	PreTrigger TriggerKind = "pre-trigger" // buffered before an event, emitted with it
	Send       TriggerKind = "send"        // a file sent by `framepush send`
)

// Event reports whether frames of this kind were asked for by an event (a
// GPIO edge, a signal, and the pre-trigger frames kept for them) rather than
// by a clock; a full queue keeps them ahead of the others.
func (k TriggerKind) Event() bool {
	switch k {
	case GPIO, Signal, PreTrigger:
		return true
	}
	return false
}
