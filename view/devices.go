// Package view keeps per-device state from the frames the receiver stores
// and serves it over HTTP: a web page with one live tile per device, each
// device's recent frames, its newest frame as a still (latest.jpg) and as
// an MJPEG stream (stream.mjpg), and the same state as JSON (/api/devices).
//
// It depends only on receiver.Stored, so it works the same whatever storage
// the receiver uses. Devices.Record runs on the receiver's connection
// goroutine before GOT IMAGE: it takes one mutex for O(1) work and never
// waits for a viewer.
package view

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"framepush/receiver"
	"framepush/view/mjpeg"
)

// Defaults for zero Options fields.
const (
	DefaultStaleAfter  = 2 * time.Minute
	DefaultMaxDevices  = 64
	DefaultRecent      = 50
	DefaultRecentBytes = 16 << 20
)

// Options configures Devices.
type Options struct {
	// StaleAfter marks a device stale when it sent nothing for this long
	// (default 2 min).
	StaleAfter time.Duration
	// MaxDevices bounds the devices tracked (default 64); a new one over
	// it evicts the one silent the longest, logged.
	MaxDevices int
	// Recent is how many frames each device lists (default 50).
	Recent int
	// RecentBytes bounds, per device, the payload bytes kept for the
	// recent frames besides the newest (default 16 MiB); older ones are
	// listed without their image. Memory is at most MaxDevices × (the
	// newest frame, at most receiver.Options.KeepData, + RecentBytes).
	RecentBytes int64
	// Now is the clock (default time.Now).
	Now func() time.Time
	// OnEvict is told when a device is evicted (optional).
	OnEvict func(name string)
}

func (o Options) withDefaults() Options {
	if o.StaleAfter <= 0 {
		o.StaleAfter = DefaultStaleAfter
	}
	if o.MaxDevices <= 0 {
		o.MaxDevices = DefaultMaxDevices
	}
	if o.Recent <= 0 {
		o.Recent = DefaultRecent
	}
	if o.RecentBytes <= 0 {
		o.RecentBytes = DefaultRecentBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Devices is the per-device state.
type Devices struct {
	opt     Options
	started time.Time

	mu      sync.Mutex
	devs    map[string]*device
	evicted uint64

	streams mjpeg.Streamer
}

// New makes an empty Devices.
func New(o Options) *Devices {
	o = o.withDefaults()
	return &Devices{opt: o, started: o.Now(), devs: make(map[string]*device)}
}

// minute is one-second buckets over the last 60 s.
type minute struct {
	sec                 [60]int64
	frames, bytes, latN [60]uint64
	latSum              [60]time.Duration
}

func (m *minute) add(now time.Time, size int64, lat time.Duration, hasLat bool) {
	s := now.Unix()
	i := int(s % 60)
	if m.sec[i] != s {
		m.sec[i], m.frames[i], m.bytes[i], m.latN[i], m.latSum[i] = s, 0, 0, 0, 0
	}
	m.frames[i]++
	m.bytes[i] += uint64(size)
	if hasLat {
		m.latN[i]++
		m.latSum[i] += lat
	}
}

func (m *minute) sum(now time.Time) (frames, bytes uint64, lat time.Duration, latN uint64) {
	s := now.Unix()
	for i := range m.sec {
		if d := s - m.sec[i]; d >= 0 && d < 60 {
			frames += m.frames[i]
			bytes += m.bytes[i]
			latN += m.latN[i]
			lat += m.latSum[i]
		}
	}
	if latN > 0 {
		lat /= time.Duration(latN)
	}
	return
}

// entry is one stored frame as the view remembers it.
type entry struct {
	N        uint64 // per device, from 1, in arrival order
	ID       string
	Capture  time.Time
	Stored   time.Time
	Size     int64
	Location string
	Type     string
	Latency  time.Duration
	HasLat   bool
	data     []byte // nil when not kept
}

type device struct {
	name      string
	peer      string
	first     time.Time
	lastSeen  time.Time
	frames    uint64
	bytes     uint64
	lastLat   time.Duration
	hasLat    bool
	rate      minute
	seq       seqTracker
	recent    []*entry // ring of Options.Recent, oldest overwritten
	next      int
	keptBytes int64
	latest    mjpeg.Latest
	tooLarge  uint64 // frames whose payload was not passed (over KeepData)
}

// contentType of a payload from its first bytes (what the receiver names
// .jpg and .png).
func contentType(b []byte) string {
	switch {
	case len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF:
		return "image/jpeg"
	case len(b) >= 8 && string(b[:8]) == "\x89PNG\r\n\x1a\n":
		return "image/png"
	}
	return ""
}

// Record updates the state with one stored frame. It is the receiver's
// OnFrame (or part of it): quick, and it never blocks on viewers.
func (d *Devices) Record(st receiver.Stored) {
	now := d.opt.Now()
	stored := st.Stamp
	if stored.IsZero() {
		stored = now
	}
	e := &entry{ID: st.Meta.ID, Capture: st.Meta.Time, Stored: stored, Size: st.Size, Location: st.Path, Type: contentType(st.Data), data: st.Data}
	if !st.Meta.Time.IsZero() {
		e.Latency, e.HasLat = stored.Sub(st.Meta.Time), true
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	dev := d.devs[st.Client]
	if dev == nil {
		dev = d.add(st.Client, now)
	}
	dev.peer = st.Peer
	dev.lastSeen = now
	dev.frames++
	dev.bytes += uint64(st.Size)
	e.N = dev.frames
	if e.HasLat {
		dev.lastLat, dev.hasLat = e.Latency, true
	}
	dev.rate.add(now, st.Size, e.Latency, e.HasLat)
	dev.seq.observe(st.Meta.ID)
	if st.Data == nil && st.Size > 0 {
		dev.tooLarge++
	}
	if e.Type != "" {
		dev.latest.Set(&mjpeg.Image{Data: st.Data, ContentType: e.Type, Time: stored})
	} else {
		e.data = nil
	}
	dev.push(e, d.opt.RecentBytes)
}

// push adds e to the recent ring and drops the payloads of the oldest
// entries until those kept besides e's are within budget.
func (dev *device) push(e *entry, budget int64) {
	n := len(dev.recent)
	if old := dev.recent[dev.next]; old != nil {
		dev.keptBytes -= int64(len(old.data))
	}
	dev.recent[dev.next] = e
	dev.next = (dev.next + 1) % n
	dev.keptBytes += int64(len(e.data))
	for i := 0; i < n-1 && dev.keptBytes-int64(len(e.data)) > budget; i++ {
		if o := dev.recent[(dev.next+i)%n]; o != nil && o.data != nil {
			dev.keptBytes -= int64(len(o.data))
			o.data = nil
		}
	}
}

// add makes a device, evicting the longest silent one when full.
func (d *Devices) add(name string, now time.Time) *device {
	if len(d.devs) >= d.opt.MaxDevices {
		var oldest *device
		for _, o := range d.devs {
			if oldest == nil || o.lastSeen.Before(oldest.lastSeen) {
				oldest = o
			}
		}
		delete(d.devs, oldest.name)
		d.evicted++
		if d.opt.OnEvict != nil {
			d.opt.OnEvict(oldest.name)
		}
	}
	dev := &device{name: name, first: now, recent: make([]*entry, d.opt.Recent)}
	d.devs[name] = dev
	return dev
}

// Evicted is the number of devices dropped to stay within MaxDevices.
func (d *Devices) Evicted() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.evicted
}

// FrameInfo is one frame in the JSON and on the pages.
type FrameInfo struct {
	N              uint64    `json:"n"`
	ID             string    `json:"id,omitempty"`
	CaptureTime    time.Time `json:"capture_time,omitzero"`
	StoredTime     time.Time `json:"stored_time"`
	Size           int64     `json:"size"`
	Location       string    `json:"location"`
	ContentType    string    `json:"content_type,omitempty"`
	LatencySeconds *float64  `json:"latency_seconds,omitempty"`
	URL            string    `json:"url,omitempty"` // the image, while it is kept in memory
}

// DeviceState is one device's state as /api/devices reports it.
type DeviceState struct {
	Name              string      `json:"name"`
	Peer              string      `json:"peer"`
	FirstSeen         time.Time   `json:"first_seen"`
	LastSeen          time.Time   `json:"last_seen"`
	AgeSeconds        float64     `json:"age_seconds"`
	Stale             bool        `json:"stale"`
	Frames            uint64      `json:"frames"`
	Bytes             uint64      `json:"bytes"`
	FramesPerMinute   uint64      `json:"frames_per_minute"`
	BytesPerMinute    uint64      `json:"bytes_per_minute"`
	LatencySeconds    *float64    `json:"latency_seconds,omitempty"`     // capture to stored, the last frame
	LatencyAvgSeconds *float64    `json:"latency_avg_seconds,omitempty"` // over the last minute
	IDs               seqCounts   `json:"ids"`
	NotKept           uint64      `json:"not_kept"`  // frames too large to keep in memory
	HasImage          bool        `json:"has_image"` // latest.jpg has an image to serve
	Latest            *FrameInfo  `json:"latest,omitempty"`
	LatestURL         string      `json:"latest_url"`
	StreamURL         string      `json:"stream_url"`
	PageURL           string      `json:"page_url"`
	Recent            []FrameInfo `json:"recent,omitempty"` // newest first; only for one device
}

func secs(d time.Duration) *float64 { f := d.Seconds(); return &f }

func deviceURL(name string) string { return "/devices/" + pathEscape(name) + "/" }

// pathEscape escapes a device name for a URL path segment. Names are wire
// tokens or peer folders ([A-Za-z0-9._:+-]); ':' and '+' are escaped for
// the clients that read them specially, and anything else defensively.
func pathEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func (e *entry) info(name string) FrameInfo {
	fi := FrameInfo{N: e.N, ID: e.ID, CaptureTime: e.Capture, StoredTime: e.Stored, Size: e.Size, Location: e.Location, ContentType: e.Type}
	if e.HasLat {
		fi.LatencySeconds = secs(e.Latency)
	}
	if e.data != nil {
		fi.URL = fmt.Sprintf("%sframes/%d", deviceURL(name), e.N)
	}
	return fi
}

func (d *Devices) state(dev *device, now time.Time, withRecent bool) DeviceState {
	f, b, lat, latN := dev.rate.sum(now)
	age := now.Sub(dev.lastSeen)
	s := DeviceState{
		Name: dev.name, Peer: dev.peer, FirstSeen: dev.first, LastSeen: dev.lastSeen,
		AgeSeconds: age.Seconds(), Stale: age > d.opt.StaleAfter,
		Frames: dev.frames, Bytes: dev.bytes, FramesPerMinute: f, BytesPerMinute: b,
		IDs: dev.seq.seqCounts, NotKept: dev.tooLarge,
		LatestURL: deviceURL(dev.name) + "latest.jpg", StreamURL: deviceURL(dev.name) + "stream.mjpg", PageURL: deviceURL(dev.name),
	}
	if img, _ := dev.latest.Get(); img != nil {
		s.HasImage = true
	}
	if dev.hasLat {
		s.LatencySeconds = secs(dev.lastLat)
	}
	if latN > 0 {
		s.LatencyAvgSeconds = secs(lat)
	}
	n := len(dev.recent)
	for i := 1; i <= n; i++ {
		e := dev.recent[(dev.next-i+n)%n]
		if e == nil {
			break
		}
		if s.Latest == nil {
			fi := e.info(dev.name)
			s.Latest = &fi
		}
		if !withRecent {
			break
		}
		s.Recent = append(s.Recent, e.info(dev.name))
	}
	return s
}

// States is every device's state, sorted by name.
func (d *Devices) States() []DeviceState {
	now := d.opt.Now()
	d.mu.Lock()
	out := make([]DeviceState, 0, len(d.devs))
	for _, dev := range d.devs {
		out = append(out, d.state(dev, now, false))
	}
	d.mu.Unlock()
	slices.SortFunc(out, func(a, b DeviceState) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// State is one device's state with its recent frames; ok is false for an
// unknown device.
func (d *Devices) State(name string) (DeviceState, bool) {
	now := d.opt.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	dev := d.devs[name]
	if dev == nil {
		return DeviceState{}, false
	}
	return d.state(dev, now, true), true
}

// latest is the device's newest-image holder, nil for an unknown device.
func (d *Devices) latest(name string) *mjpeg.Latest {
	d.mu.Lock()
	defer d.mu.Unlock()
	if dev := d.devs[name]; dev != nil {
		return &dev.latest
	}
	return nil
}

// frame is a kept payload of a recent frame.
func (d *Devices) frame(name string, n uint64) (*entry, []byte, int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	dev := d.devs[name]
	if dev == nil {
		return nil, nil, http.StatusNotFound
	}
	for _, e := range dev.recent {
		if e != nil && e.N == n {
			if e.data == nil {
				return e, nil, http.StatusGone
			}
			return e, e.data, http.StatusOK
		}
	}
	return nil, nil, http.StatusGone
}
