package mqtt

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"framepush/internal/testutil"
	"framepush/internal/testutil/mqtttest"
	"framepush/internal/testutil/pushtest"
	"framepush/notify"
	"framepush/receiver"
)

// subscriber records what a real MQTT client receives.
type subscriber struct {
	mu   sync.Mutex
	msgs []paho.Message
	c    paho.Client
}

func subscribe(t *testing.T, url string, topics ...string) *subscriber {
	t.Helper()
	s := &subscriber{}
	o := paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("test-sub-%d", time.Now().UnixNano())).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(200 * time.Millisecond).
		SetMaxReconnectInterval(500 * time.Millisecond).SetOrderMatters(false).
		SetOnConnectHandler(func(c paho.Client) {
			for _, tp := range topics {
				c.Subscribe(tp, 0, func(_ paho.Client, m paho.Message) {
					s.mu.Lock()
					s.msgs = append(s.msgs, m)
					s.mu.Unlock()
				})
			}
		})
	s.c = paho.NewClient(o)
	if tok := s.c.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber cannot connect: %v", tok.Error())
	}
	t.Cleanup(func() { s.c.Disconnect(100) })
	return s
}

func (s *subscriber) find(topic string, pred func(paho.Message) bool) paho.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.msgs) - 1; i >= 0; i-- {
		if m := s.msgs[i]; m.Topic() == topic && (pred == nil || pred(m)) {
			return m
		}
	}
	return nil
}

func (s *subscriber) count(topic string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.msgs {
		if m.Topic() == topic {
			n++
		}
	}
	return n
}

func (s *subscriber) wait(t *testing.T, topic string, pred func(paho.Message) bool) paho.Message {
	t.Helper()
	var m paho.Message
	testutil.WaitFor(t, "a message on "+topic, 30*time.Second, func() bool { m = s.find(topic, pred); return m != nil })
	return m
}

// receiverWith runs a real receiver that hands each stored frame to n.
func receiverWith(t *testing.T, n notify.Notifier, hook func()) string {
	t.Helper()
	srv, err := receiver.New(receiver.Options{
		Dir: t.TempDir(), NoFsync: true, MinFreeBytes: -1, KeepData: 8 << 20, Logger: slog.New(slog.DiscardHandler),
		OnFrame: func(s receiver.Stored) {
			n.Notify(notify.FromStored(s))
			if hook != nil {
				hook()
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return ln.Addr().String()
}

func TestEventsImagesAndDiscovery(t *testing.T) {
	b := mqtttest.Start(t)
	sub := subscribe(t, b.URL, "framepush/#", "homeassistant/#")
	pub, err := New(Options{Broker: b.URL, ClientID: "framerecv-test", Discovery: true, StaleAfter: 2 * time.Second, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	sub.wait(t, "framepush/status", func(m paho.Message) bool { return string(m.Payload()) == "online" })

	p := pushtest.Dial(t, receiverWith(t, pub, nil))
	var frames [][]byte
	for i := range 3 {
		f := pushtest.JPEG(t, i, 64, 48)
		frames = append(frames, f)
		p.MustSend("porch", fmt.Sprintf("r1-%d", i+1), f)
	}
	p.MustSend("cam+1", "x-1", pushtest.JPEG(t, 5, 16, 16)) // '+' is a wildcard in MQTT

	ev := sub.wait(t, "framepush/porch/event", func(m paho.Message) bool { return strings.Contains(string(m.Payload()), `"r1-3"`) })
	var got EventJSON
	if err := json.Unmarshal(ev.Payload(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Device != "porch" || got.ID != "r1-3" || got.Size != int64(len(frames[2])) || got.Location == "" || !isoMicro.MatchString(got.Time) || !isoMicro.MatchString(got.Stored) || !got.Image || got.ContentType != "image/jpeg" {
		t.Fatalf("event %+v", got)
	}
	if n := sub.count("framepush/porch/event"); n != 3 {
		t.Fatalf("%d events for porch, want 3", n)
	}
	sub.wait(t, "framepush/cam_1/event", nil)
	sub.wait(t, "framepush/porch/state", func(m paho.Message) bool { return string(m.Payload()) == "online" })

	// A client arriving later gets the retained newest image, discovery
	// and state.
	late := subscribe(t, b.URL, "framepush/#", "homeassistant/#")
	img := late.wait(t, "framepush/porch/image", nil)
	if !img.Retained() || !bytes.Equal(img.Payload(), frames[2]) {
		t.Fatalf("retained image: retained %v, %d bytes, want the newest frame (%d bytes)", img.Retained(), len(img.Payload()), len(frames[2]))
	}
	cam := late.wait(t, "homeassistant/camera/framepush_porch/camera/config", nil)
	var cfg map[string]any
	if err := json.Unmarshal(cam.Payload(), &cfg); err != nil {
		t.Fatal(err)
	}
	dev, _ := cfg["device"].(map[string]any)
	if !cam.Retained() || cfg["topic"] != "framepush/porch/image" || cfg["unique_id"] != "framepush_porch_camera" ||
		cfg["availability_topic"] != "framepush/status" || dev["name"] != "porch" {
		t.Fatalf("camera discovery %s", cam.Payload())
	}
	sensor := late.wait(t, "homeassistant/sensor/framepush_porch/last_frame/config", nil)
	if err := json.Unmarshal(sensor.Payload(), &cfg); err != nil || cfg["state_topic"] != "framepush/porch/event" || cfg["device_class"] != "timestamp" {
		t.Fatalf("sensor discovery %s", sensor.Payload())
	}
	online := late.wait(t, "homeassistant/binary_sensor/framepush_porch/online/config", nil)
	if err := json.Unmarshal(online.Payload(), &cfg); err != nil || cfg["state_topic"] != "framepush/porch/state" || cfg["payload_off"] != "stale" {
		t.Fatalf("binary sensor discovery %s", online.Payload())
	}
	late.wait(t, "homeassistant/camera/framepush_cam_1/camera/config", nil)

	// Silent for longer than StaleAfter: the state turns stale, and back
	// to online with the next frame.
	sub.wait(t, "framepush/porch/state", func(m paho.Message) bool { return string(m.Payload()) == "stale" })
	p.MustSend("porch", "r1-4", frames[0])
	sub.wait(t, "framepush/porch/event", func(m paho.Message) bool { return strings.Contains(string(m.Payload()), `"r1-4"`) })
	if m := sub.find("framepush/porch/state", nil); string(m.Payload()) != "online" {
		t.Fatalf("state after a new frame: %q", m.Payload())
	}
}

// The broker hangs, then dies, while frames keep coming: every frame is
// acknowledged, Notify never waits, events are dropped and counted; when
// the broker is back, publishing resumes by itself.
func TestBrokerDownCostsDeliveryNothing(t *testing.T) {
	b := mqtttest.Start(t)
	pub, err := New(Options{Broker: b.URL, ClientID: "framerecv-test", Discovery: true, Queue: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	sub := subscribe(t, b.URL, "framepush/+/event")
	var slowest atomic.Int64 // the longest Notify, for the log
	n := notifyFunc(func(e notify.Event) {
		began := time.Now()
		pub.Notify(e)
		if d := int64(time.Since(began)); d > slowest.Load() {
			slowest.Store(d)
		}
	})
	p := pushtest.Dial(t, receiverWith(t, n, nil))
	frame := pushtest.JPEG(t, 1, 320, 240)
	seq := 0
	send := func(k int) time.Duration {
		began := time.Now()
		for range k {
			seq++
			p.MustSend("cam", fmt.Sprintf("r-%d", seq), frame)
		}
		return time.Since(began) / time.Duration(k)
	}
	send(5)
	sub.wait(t, "framepush/cam/event", func(m paho.Message) bool { return strings.Contains(string(m.Payload()), `"r-5"`) })
	before := send(200)

	b.Freeze() // hung: the TCP connection stays, nothing is read
	hung := send(500)
	b.Kill() // gone
	dead := send(500)
	if d := pub.Dropped(DropQueueFull) + pub.Dropped(DropDisconnected) + pub.Dropped(DropPublishError); d == 0 {
		t.Fatal("no event dropped while the broker was down")
	}
	t.Logf("per frame: %v with the broker up, %v hung, %v dead; slowest Notify %v; dropped: queue-full %d, disconnected %d, publish-error %d",
		before, hung, dead, time.Duration(slowest.Load()), pub.Dropped(DropQueueFull), pub.Dropped(DropDisconnected), pub.Dropped(DropPublishError))

	b.Restart()
	// Publishing resumes by itself: keep sending until an event after the
	// restart arrives.
	testutil.WaitFor(t, "events after the broker's restart", 60*time.Second, func() bool {
		send(1)
		return sub.find("framepush/cam/event", func(m paho.Message) bool {
			var e EventJSON
			return json.Unmarshal(m.Payload(), &e) == nil && e.ID == fmt.Sprintf("r-%d", seq)
		}) != nil
	})
}

// isoMicro is what Home Assistant's timestamp sensor parses.
var isoMicro = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`)

type notifyFunc func(notify.Event)

func (f notifyFunc) Notify(e notify.Event) { f(e) }

func TestOptionErrors(t *testing.T) {
	for _, broker := range []string{"", "localhost:1883", "http://x:1883", "tcp://"} {
		if _, err := New(Options{Broker: broker}); err == nil || !strings.Contains(err.Error(), "mqtt: broker") {
			t.Errorf("broker %q: %v", broker, err)
		}
	}
	if _, err := New(Options{Broker: "tcp://127.0.0.1:1", Prefix: "a/+"}); err == nil {
		t.Error("a wildcard prefix accepted")
	}
}

// A broker down when framerecv starts: events are dropped and counted, and
// publishing starts by itself once the broker is up.
func TestBrokerDownAtStart(t *testing.T) {
	b := mqtttest.Start(t)
	b.Kill()
	pub, err := New(Options{Broker: b.URL, ClientID: "framerecv-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	for i := range 10 {
		pub.Notify(notify.Event{Device: "cam", ID: fmt.Sprintf("r-%d", i+1), Stored: time.Now()})
	}
	testutil.WaitFor(t, "the events to be dropped as disconnected", 30*time.Second, func() bool { return pub.Dropped(DropDisconnected) == 10 })
	b.Restart()
	sub := subscribe(t, b.URL, "framepush/+/event")
	n := 10
	testutil.WaitFor(t, "events once the broker is up", 60*time.Second, func() bool {
		n++
		pub.Notify(notify.Event{Device: "cam", ID: fmt.Sprintf("r-%d", n), Stored: time.Now()})
		time.Sleep(50 * time.Millisecond)
		return sub.find("framepush/cam/event", nil) != nil
	})
}

// A broker with TLS and a password: the right credentials publish, wrong
// ones never connect and every event is dropped and counted.
func TestCredentialsAndTLS(t *testing.T) {
	pki := testutil.NewPKI(t, "test broker CA")
	b := mqtttest.StartWith(t, mqtttest.Options{User: "framerecv", Password: "pw 1", CertFile: pki.ServerCert, KeyFile: pki.ServerKey})
	tlsCfg := &tls.Config{RootCAs: pki.Pool, MinVersion: tls.VersionTLS12}
	sub := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL).SetClientID("tls-sub").SetUsername("framerecv").SetPassword("pw 1").SetTLSConfig(tlsCfg))
	if tok := sub.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber: %v", tok.Error())
	}
	defer sub.Disconnect(100)
	var mu sync.Mutex
	var events int
	sub.Subscribe("framepush/+/event", 0, func(paho.Client, paho.Message) { mu.Lock(); events++; mu.Unlock() }).Wait()

	wrong, err := New(Options{Broker: b.URL, ClientID: "wrong", Username: "framerecv", Password: "nope", TLS: tlsCfg})
	if err != nil {
		t.Fatal(err)
	}
	defer wrong.Close()
	good, err := New(Options{Broker: b.URL, ClientID: "good", Username: "framerecv", Password: "pw 1", TLS: tlsCfg})
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	testutil.WaitFor(t, "an event through TLS with the password", 30*time.Second, func() bool {
		good.Notify(notify.Event{Device: "cam", ID: "r-1", Stored: time.Now()})
		wrong.Notify(notify.Event{Device: "cam", ID: "r-1", Stored: time.Now()})
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		return events > 0
	})
	if wrong.Published() != 0 || wrong.Dropped(DropDisconnected) == 0 {
		t.Fatalf("wrong password: %d published, %d dropped as disconnected", wrong.Published(), wrong.Dropped(DropDisconnected))
	}
}
