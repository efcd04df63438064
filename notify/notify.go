// Package notify is the seam between the receiver and whatever wants to
// hear about stored frames (MQTT for home automation, see notify/mqtt).
//
// A Notifier is called once per stored frame on the receiver's connection
// goroutine, before GOT IMAGE: it must return at once and never wait for
// the network. Implementations hand events to their own goroutine through
// a bounded queue and drop, count and log what does not fit, so that a slow
// or absent consumer costs frame delivery nothing.
package notify

import (
	"time"

	"framepush/receiver"
)

// Event is one stored frame.
type Event struct {
	Device      string    // the extension's name, else the peer's folder
	ID          string    // the frame's id, if it carried one
	Capture     time.Time // capture time, if the sender gave one
	Stored      time.Time // when it became durable
	Size        int64     // payload bytes
	Location    string    // where it is stored (a path, or a store's key)
	ContentType string    // "image/jpeg", "image/png", or "" when unknown
	// Data is the payload when the receiver kept it (receiver.Options.KeepData),
	// else nil. It is shared with other consumers: read it, never modify it.
	Data []byte
}

// Notifier hears of each stored frame. Notify must not block.
type Notifier interface {
	Notify(Event)
}

// Multi notifies each of its notifiers in turn.
type Multi []Notifier

// Notify implements Notifier.
func (m Multi) Notify(e Event) {
	for _, n := range m {
		n.Notify(e)
	}
}

// FromStored makes the Event of a frame the receiver stored.
func FromStored(s receiver.Stored) Event {
	e := Event{Device: s.Client, ID: s.Meta.ID, Capture: s.Meta.Time, Stored: s.Stamp, Size: s.Size, Location: s.Path, Data: s.Data}
	if e.Stored.IsZero() {
		e.Stored = time.Now()
	}
	switch b := s.Data; {
	case len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF:
		e.ContentType = "image/jpeg"
	case len(b) >= 8 && string(b[:8]) == "\x89PNG\r\n\x1a\n":
		e.ContentType = "image/png"
	}
	return e
}
