// Package mqtt publishes stored frames to an MQTT broker for home
// automation, with Home Assistant MQTT discovery:
//
//	<prefix>/<device>/event   JSON per stored frame (device, id, time, size, location)
//	<prefix>/<device>/image   the newest image bytes, retained (Home Assistant's MQTT camera)
//	<prefix>/<device>/state   "online" or "stale", retained
//	<prefix>/status           "online" while framerecv is connected, "offline" (retained, also as its will)
//	<discovery>/camera|sensor|binary_sensor/framepush_<device>/.../config   discovery, retained
//
// The broker never slows frame delivery: Notify puts the event in a bounded
// queue (dropping and counting when full), one goroutine publishes, and an
// event that finds the broker unreachable is dropped and counted too.
// Publishing resumes by itself when the broker is back (discovery and
// states are published again on every connect).
//
// Client: github.com/eclipse/paho.mqtt.golang v1.5.1. Sharp edges read in
// its source (client.go, Publish):
//   - IsConnected() is true while reconnecting (AutoReconnect), and a QoS 1
//     Publish then goes to the in-memory store, unbounded, to be sent after
//     the reconnect: we publish only when IsConnectionOpen(), so nothing
//     piles up while the broker is away.
//   - A QoS 0 Publish while reconnecting returns a completed token although
//     the message is dropped: the same check makes us count it.
//   - Publish blocks up to WriteTimeout (default 30 s) when its outbound
//     channel is full (a broker that stopped reading): we set 5 s, and it
//     blocks only our goroutine.
//   - Without ConnectRetry the first Connect fails for good when the
//     broker is down at start; we set it, so framerecv starts regardless.
//   - OnConnect runs in its own goroutine on every (re)connect; ours only
//     signals the publishing goroutine.
package mqtt

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	paho "github.com/eclipse/paho.mqtt.golang"

	"framepush/internal/logging"
	"framepush/notify"
)

// Defaults for zero Options fields.
const (
	DefaultPrefix          = "framepush"
	DefaultDiscoveryPrefix = "homeassistant"
	DefaultQueue           = 64
	DefaultMaxImage        = 8 << 20
	DefaultStaleAfter      = 2 * time.Minute
)

// Options configures a Publisher.
type Options struct {
	// Broker is the broker's URL: tcp://HOST:1883, or ssl:// (tls://,
	// mqtts://) for TLS, or ws:// / wss://.
	Broker   string
	ClientID string // default "framerecv-<host>"
	Username string
	Password string
	TLS      *tls.Config // for ssl:// brokers (CA, client certificate)

	// Prefix starts every topic (default "framepush").
	Prefix string
	// Discovery publishes Home Assistant discovery under DiscoveryPrefix
	// (default "homeassistant").
	Discovery       bool
	DiscoveryPrefix string
	// StaleAfter turns a device's state to "stale" after this long
	// without a frame (default 2 min).
	StaleAfter time.Duration
	// Queue is how many events wait for the publisher (default 64);
	// more are dropped and counted.
	Queue int
	// MaxImage bounds the image bytes published (default 8 MiB); larger
	// frames get their event only.
	MaxImage int64
	// Version is reported in discovery's origin.
	Version string

	Logger  *slog.Logger
	Metrics *metrics.Set // counters are registered here (default: a new set)
}

// Drop reasons, counted in framerecv_mqtt_dropped_total{reason}.
const (
	DropQueueFull    = "queue-full"    // the publisher was behind (a slow broker)
	DropDisconnected = "disconnected"  // the broker was unreachable
	DropPublishError = "publish-error" // the broker connection failed during the publish
)

// Publisher publishes events to MQTT. Notify never blocks.
type Publisher struct {
	o      Options
	log    *slog.Logger
	client paho.Client
	events chan notify.Event
	conn   chan struct{} // a (re)connect happened
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once

	published *metrics.Counter
	dropped   map[string]*metrics.Counter

	// owned by the publishing goroutine
	devices    map[string]*deviceState
	warnedDown bool
}

type deviceState struct {
	lastSeen  time.Time
	state     string // "online", "stale"
	announced bool   // discovery sent on this connection
}

// New checks o and starts connecting in the background; a broker that is
// down is retried (capped backoff) while events are dropped and counted.
func New(o Options) (*Publisher, error) {
	u, err := url.Parse(o.Broker)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("mqtt: broker %q is not a URL like tcp://HOST:1883 or ssl://HOST:8883", o.Broker)
	}
	switch u.Scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
	default:
		return nil, fmt.Errorf("mqtt: broker %q: scheme %q is not one of tcp, mqtt, ssl, tls, mqtts, ws, wss", o.Broker, u.Scheme)
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(o.Prefix, "+#") {
		return nil, fmt.Errorf("mqtt: topic prefix %q has a wildcard (+ or #)", o.Prefix)
	}
	if o.DiscoveryPrefix == "" {
		o.DiscoveryPrefix = DefaultDiscoveryPrefix
	}
	if o.StaleAfter <= 0 {
		o.StaleAfter = DefaultStaleAfter
	}
	if o.Queue <= 0 {
		o.Queue = DefaultQueue
	}
	if o.MaxImage <= 0 {
		o.MaxImage = DefaultMaxImage
	}
	if o.Logger == nil {
		o.Logger = logging.Discard
	}
	if o.Metrics == nil {
		o.Metrics = metrics.NewSet()
	}
	if o.ClientID == "" {
		o.ClientID = "framerecv"
	}
	p := &Publisher{
		o: o, log: o.Logger.With("part", "mqtt", "broker", redact(u)),
		events: make(chan notify.Event, o.Queue), conn: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{}),
		published: o.Metrics.NewCounter("framerecv_mqtt_published_total"),
		dropped:   map[string]*metrics.Counter{},
		devices:   map[string]*deviceState{},
	}
	for _, r := range []string{DropQueueFull, DropDisconnected, DropPublishError} {
		p.dropped[r] = o.Metrics.NewCounter(fmt.Sprintf("framerecv_mqtt_dropped_total{reason=%q}", r))
	}
	co := paho.NewClientOptions().
		AddBroker(o.Broker).
		SetClientID(o.ClientID).
		SetUsername(o.Username).
		SetPassword(o.Password).
		SetCleanSession(true).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(2*time.Second).
		SetMaxReconnectInterval(30*time.Second).
		SetConnectTimeout(5*time.Second).
		SetWriteTimeout(5*time.Second).
		SetKeepAlive(30*time.Second).
		SetOrderMatters(false).
		SetWill(p.topic("status"), "offline", 1, true).
		SetOnConnectHandler(func(paho.Client) {
			select {
			case p.conn <- struct{}{}:
			default:
			}
		}).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			p.log.Warn("broker connection lost; events are dropped and counted until it is back", "error", err)
		}).
		SetReconnectingHandler(func(paho.Client, *paho.ClientOptions) {
			p.log.Debug("reconnecting to the broker")
		})
	if o.TLS != nil {
		co.SetTLSConfig(o.TLS)
	}
	o.Metrics.NewGauge("framerecv_mqtt_connected", func() float64 {
		if p.client.IsConnectionOpen() {
			return 1
		}
		return 0
	})
	p.client = paho.NewClient(co)
	p.client.Connect() // with ConnectRetry it keeps trying in the background
	go p.run()
	return p, nil
}

func redact(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

// Notify queues e for publishing; when the queue is full it drops e and
// counts it. It never blocks.
func (p *Publisher) Notify(e notify.Event) {
	select {
	case p.events <- e:
	default:
		p.drop(DropQueueFull, e)
	}
}

// Dropped is the number of events dropped for reason.
func (p *Publisher) Dropped(reason string) uint64 { return p.dropped[reason].Get() }

// Published is the number of messages published.
func (p *Publisher) Published() uint64 { return p.published.Get() }

func (p *Publisher) drop(reason string, e notify.Event) {
	c := p.dropped[reason]
	n := c.Get()
	c.Inc()
	// Log the first drop of a run and then every 100th, not every one.
	if n%100 == 0 {
		p.log.Warn("MQTT event dropped", "reason", reason, "device", e.Device, "id", e.ID, "dropped_for_this_reason", n+1)
	} else {
		p.log.Debug("MQTT event dropped", "reason", reason, "device", e.Device, "id", e.ID)
	}
}

// Close publishes "offline" and disconnects; pending events are dropped.
func (p *Publisher) Close() {
	p.once.Do(func() {
		close(p.stop)
		<-p.done
		if p.client.IsConnectionOpen() {
			p.client.Publish(p.topic("status"), 1, true, "offline").WaitTimeout(2 * time.Second)
		}
		p.client.Disconnect(250)
	})
}

func (p *Publisher) run() {
	defer close(p.done)
	tick := time.NewTicker(max(time.Second, p.o.StaleAfter/4))
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-p.conn:
			p.connected()
		case <-tick.C:
			p.checkStale()
			if !p.client.IsConnectionOpen() && !p.warnedDown {
				// paho retries quietly; say it once per outage.
				p.warnedDown = true
				p.log.Warn("not connected to the MQTT broker; retrying, events are dropped and counted meanwhile",
					"dropped_disconnected", p.Dropped(DropDisconnected))
			}
		case e := <-p.events:
			p.publishEvent(e)
		}
	}
}

// topic joins the prefix and parts.
func (p *Publisher) topic(parts ...string) string {
	return p.o.Prefix + "/" + strings.Join(parts, "/")
}

// topicName makes a device name safe as one topic level: the wire's
// names may hold '+', a wildcard that is invalid in a topic name.
func topicName(s string) string {
	return strings.NewReplacer("+", "_", "#", "_", "/", "_").Replace(s)
}

// objectID makes a device name a Home Assistant object id
// ([a-zA-Z0-9_-]).
func objectID(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b)
}

// publish sends one message and waits for it to be written; false when
// the broker is not reachable.
func (p *Publisher) publish(topic string, retained bool, payload []byte) error {
	if !p.client.IsConnectionOpen() {
		return errNotConnected
	}
	t := p.client.Publish(topic, 0, retained, payload)
	if !t.WaitTimeout(10 * time.Second) {
		return errors.New("publish timed out")
	}
	if err := t.Error(); err != nil {
		return err
	}
	p.published.Inc()
	return nil
}

var errNotConnected = errors.New("not connected")

func (p *Publisher) connected() {
	p.warnedDown = false
	p.log.Info("connected to the MQTT broker", "devices", len(p.devices))
	if err := p.publish(p.topic("status"), true, []byte("online")); err != nil {
		p.log.Warn("cannot publish the receiver's status", "error", err)
		return
	}
	for name, d := range p.devices {
		d.announced = false
		if err := p.announce(name, d); err != nil {
			return
		}
	}
}

// announce publishes a device's discovery and state, once per connection.
func (p *Publisher) announce(name string, d *deviceState) error {
	if d.announced {
		return nil
	}
	if p.o.Discovery {
		for _, m := range p.discovery(name) {
			if err := p.publish(m.topic, true, m.payload); err != nil {
				p.log.Warn("cannot publish Home Assistant discovery", "device", name, "error", err)
				return err
			}
		}
	}
	if err := p.publish(p.topic(topicName(name), "state"), true, []byte(d.state)); err != nil {
		return err
	}
	d.announced = true
	return nil
}

// isoTime formats t for Home Assistant's timestamp sensor: ISO 8601 with
// the zone and microseconds (Python's datetime parses at most 6 fractional
// digits, and Go's RFC3339Nano writes 9).
func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z07:00") }

// EventJSON is the payload of <prefix>/<device>/event.
type EventJSON struct {
	Device      string `json:"device"`
	ID          string `json:"id,omitempty"`
	Time        string `json:"time"`   // capture time, else stored time (ISO 8601, µs)
	Stored      string `json:"stored"` // when it became durable
	Size        int64  `json:"size"`
	Location    string `json:"location"`
	ContentType string `json:"content_type,omitempty"`
	Image       bool   `json:"image"` // the image was published on <prefix>/<device>/image
}

func (p *Publisher) publishEvent(e notify.Event) {
	d := p.devices[e.Device]
	if d == nil {
		p.bound()
		d = &deviceState{}
		p.devices[e.Device] = d
		p.log.Info("new device", "device", e.Device)
	}
	d.lastSeen = time.Now()
	wasStale := d.state != "online"
	d.state = "online"
	if !p.client.IsConnectionOpen() {
		d.announced = false
		p.drop(DropDisconnected, e)
		return
	}
	if wasStale && d.announced {
		d.announced = false // republish the state
	}
	if err := p.announce(e.Device, d); err != nil {
		p.drop(DropPublishError, e)
		return
	}
	name := topicName(e.Device)
	withImage := e.Data != nil && int64(len(e.Data)) <= p.o.MaxImage && e.ContentType != ""
	captured := e.Capture
	if captured.IsZero() {
		captured = e.Stored
	}
	ev := EventJSON{Device: e.Device, ID: e.ID, Time: isoTime(captured), Stored: isoTime(e.Stored), Size: e.Size, Location: e.Location, ContentType: e.ContentType, Image: withImage}
	payload, _ := json.Marshal(ev)
	if withImage {
		if err := p.publish(p.topic(name, "image"), true, e.Data); err != nil {
			p.drop(DropPublishError, e)
			return
		}
	}
	if err := p.publish(p.topic(name, "event"), false, payload); err != nil {
		p.drop(DropPublishError, e)
	}
}

// maxDevices bounds the devices remembered; the one silent the longest
// goes first (its retained messages stay on the broker).
const maxDevices = 1024

func (p *Publisher) bound() {
	if len(p.devices) < maxDevices {
		return
	}
	var oldest string
	for n, d := range p.devices {
		if oldest == "" || d.lastSeen.Before(p.devices[oldest].lastSeen) {
			oldest = n
		}
	}
	delete(p.devices, oldest)
}

func (p *Publisher) checkStale() {
	now := time.Now()
	for name, d := range p.devices {
		if d.state == "online" && now.Sub(d.lastSeen) > p.o.StaleAfter {
			d.state = "stale"
			p.log.Info("device stale: no frame", "device", name, "for", now.Sub(d.lastSeen).Round(time.Second))
			if err := p.publish(p.topic(topicName(name), "state"), true, []byte("stale")); err != nil {
				d.announced = false // republished with the next connect
			}
		}
	}
}

type message struct {
	topic   string
	payload []byte
}

// discovery is the Home Assistant discovery of one device: a camera (the
// image topic), a "last frame" timestamp sensor (the event topic) and an
// "online" connectivity sensor (the state topic).
func (p *Publisher) discovery(name string) []message {
	id := "framepush_" + objectID(name)
	base := p.topic(topicName(name))
	device := map[string]any{
		"identifiers":  []string{id},
		"name":         name,
		"manufacturer": "framepush",
		"model":        "framepush camera agent",
	}
	origin := map[string]any{"name": "framerecv", "sw_version": p.o.Version}
	avail := p.topic("status")
	configs := []struct {
		component string
		payload   map[string]any
	}{
		{"camera", map[string]any{
			"name": "Camera", "unique_id": id + "_camera", "topic": base + "/image",
		}},
		{"sensor", map[string]any{
			"name": "Last frame", "unique_id": id + "_last_frame", "state_topic": base + "/event",
			"value_template": "{{ value_json.time }}", "device_class": "timestamp",
			"json_attributes_topic": base + "/event",
		}},
		{"binary_sensor", map[string]any{
			"name": "Online", "unique_id": id + "_online", "state_topic": base + "/state",
			"payload_on": "online", "payload_off": "stale", "device_class": "connectivity",
		}},
	}
	out := make([]message, 0, len(configs))
	for _, c := range configs {
		c.payload["device"] = device
		c.payload["origin"] = origin
		c.payload["availability_topic"] = avail
		b, _ := json.Marshal(c.payload)
		out = append(out, message{topic: p.o.DiscoveryPrefix + "/" + c.component + "/" + id + "/" + strings.TrimPrefix(c.payload["unique_id"].(string), id+"_") + "/config", payload: b})
	}
	return out
}
