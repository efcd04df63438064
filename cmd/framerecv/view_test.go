package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"framepush/internal/testutil"
	"framepush/internal/testutil/mqtttest"
	"framepush/internal/testutil/pushtest"
)

// runReceiver runs framerecv with args until the end of the test and
// returns its frame address, page URL and logs.
func runReceiver(t *testing.T, args ...string) (addr, page string, logs *testutil.Buffer) {
	t.Helper()
	logs = &testutil.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, append([]string{"--listen", "127.0.0.1:0", "--dir", t.TempDir(), "--log-format", "json",
			"--min-free", "0", "--fsync=false"}, args...), io.Discard, logs)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case c := <-code:
			if c != 0 {
				t.Errorf("exit code %d; logs:\n%s", c, logs.String())
			}
		case <-time.After(30 * time.Second):
			t.Error("run did not return after cancel")
		}
	})
	addr = logValue(t, logs, "receiver listening", "addr")
	if strings.Contains(strings.Join(args, " "), "--http ") {
		page = logValue(t, logs, "web page: one live tile per device", "url")
	}
	return addr, page, logs
}

func writeSecret(t *testing.T, s string) string {
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(s+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// The page, the still and the stream through the real command, behind a
// bearer token over HTTPS; /healthz stays open.
func TestPageThroughTheCommand(t *testing.T) {
	pki := testutil.NewPKI(t, "test web CA")
	addr, page, _ := runReceiver(t, "--http", "127.0.0.1:0", "--http-token-file", writeSecret(t, "s3cret"),
		"--http-tls-cert", pki.ServerCert, "--http-tls-key", pki.ServerKey)
	if !strings.HasPrefix(page, "https://127.0.0.1:") {
		t.Fatalf("page URL %q, want https", page)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.Pool}}}
	get := func(path string, auth bool) (*http.Response, []byte) {
		req, _ := http.NewRequest("GET", strings.TrimSuffix(page, "/")+path, nil)
		if auth {
			req.Header.Set("Authorization", "Bearer s3cret")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	p := pushtest.Dial(t, addr)
	frame := pushtest.JPEG(t, 1, 64, 48)
	p.MustSend("porch", "r1-1", pushtest.JPEG(t, 0, 64, 48))
	p.MustSend("porch", "r1-2", frame)

	if r, _ := get("/devices/porch/latest.jpg", false); r.StatusCode != 401 {
		t.Fatalf("latest.jpg without the token: %s", r.Status)
	}
	if r, _ := get("/healthz", false); r.StatusCode != 200 {
		t.Fatalf("/healthz: %s", r.Status)
	}
	if r, b := get("/devices/porch/latest.jpg", true); r.StatusCode != 200 || !bytes.Equal(b, frame) {
		t.Fatalf("latest.jpg: %s, %d bytes", r.Status, len(b))
	}
	if r, b := get("/", true); r.StatusCode != 200 || !strings.Contains(string(b), `data-device="porch"`) {
		t.Fatalf("page: %s\n%s", r.Status, b)
	}
	r, b := get("/api/devices", true)
	var api struct {
		Devices []struct {
			Name   string `json:"name"`
			Frames int    `json:"frames"`
		} `json:"devices"`
	}
	if err := json.Unmarshal(b, &api); err != nil || r.StatusCode != 200 || len(api.Devices) != 1 || api.Devices[0].Frames != 2 {
		t.Fatalf("/api/devices: %s %s", r.Status, b)
	}
	if r, b := get("/metrics", true); r.StatusCode != 200 || !strings.Contains(string(b), "framerecv_frames_total 2\n") || !strings.Contains(string(b), "framerecv_view_devices 1\n") {
		t.Fatalf("/metrics: %s\n%s", r.Status, b)
	}
}

// --mqtt through the real command: events, and discovery, on a real
// mosquitto.
func TestMQTTThroughTheCommand(t *testing.T) {
	b := mqtttest.Start(t)
	var mu sync.Mutex
	got := map[string][]byte{}
	sub := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL).SetClientID("cmd-test-sub"))
	if tok := sub.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer sub.Disconnect(100)
	sub.Subscribe("#", 0, func(_ paho.Client, m paho.Message) { mu.Lock(); got[m.Topic()] = m.Payload(); mu.Unlock() }).Wait()
	addr, _, _ := runReceiver(t, "--mqtt", b.URL, "--mqtt-client-id", "framerecv-cmd-test")
	p := pushtest.Dial(t, addr)
	frame := pushtest.JPEG(t, 2, 32, 24)
	p.MustSend("gate", "a-1", frame)
	testutil.WaitFor(t, "the event, image and discovery", 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return got["framepush/gate/event"] != nil && bytes.Equal(got["framepush/gate/image"], frame) &&
			got["homeassistant/camera/framepush_gate/camera/config"] != nil
	})
}

// --mqtt ssl:// with --mqtt-ca, --mqtt-user and --mqtt-password-file.
func TestMQTTWithTLSAndPasswordThroughTheCommand(t *testing.T) {
	pki := testutil.NewPKI(t, "test broker CA")
	b := mqtttest.StartWith(t, mqtttest.Options{User: "recv", Password: "s3cret", CertFile: pki.ServerCert, KeyFile: pki.ServerKey})
	got := make(chan []byte, 16)
	sub := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL).SetClientID("cmd-tls-sub").SetUsername("recv").SetPassword("s3cret").
		SetTLSConfig(&tls.Config{RootCAs: pki.Pool}))
	if tok := sub.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer sub.Disconnect(100)
	sub.Subscribe("framepush/gate/image", 0, func(_ paho.Client, m paho.Message) { got <- m.Payload() }).Wait()
	addr, _, _ := runReceiver(t, "--mqtt", b.URL, "--mqtt-ca", pki.CA, "--mqtt-user", "recv",
		"--mqtt-password-file", writeSecret(t, "s3cret"), "--mqtt-client-id", "framerecv-cmd-tls")
	p := pushtest.Dial(t, addr)
	frame := pushtest.JPEG(t, 3, 32, 24)
	deadline := time.After(30 * time.Second)
	for {
		p.MustSend("gate", "", frame) // until the publisher has connected
		select {
		case img := <-got:
			if !bytes.Equal(img, frame) {
				t.Fatalf("image of %d bytes, want the frame's %d", len(img), len(frame))
			}
			return
		case <-deadline:
			t.Fatal("no image over TLS with the password")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func TestViewFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--http", ":7402"}, "reachable beyond this machine"},
		{[]string{"--http", "0.0.0.0:7402"}, "--http-insecure"},
		{[]string{"--http", "127.0.0.1:7402", "--http-user", "u"}, "--http-password-file go together"},
		{[]string{"--http-token-file", "x"}, "need --http"},
		{[]string{"--mqtt-user", "u"}, "need --mqtt URL"},
		{[]string{"--stale-after", "0s"}, "--stale-after"},
		{[]string{"--http", "127.0.0.1:0", "--http-tls-cert", "a"}, "go together"},
	} {
		var stderr bytes.Buffer
		if code := run(context.Background(), c.args, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", c.args, code, stderr.String(), c.want)
		}
	}
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"--listen", "127.0.0.1:0", "--mqtt", "localhost:1883"}, io.Discard, &stderr); code != 1 || !strings.Contains(stderr.String(), "tcp://HOST:1883") {
		t.Errorf("a broker without a scheme: exit %d, %q", code, stderr.String())
	}
	for _, a := range []string{"127.0.0.1:7402", "localhost:7402", "[::1]:7402"} {
		if !isLoopback(a) {
			t.Errorf("%s not taken for loopback", a)
		}
	}
	for _, a := range []string{":7402", "0.0.0.0:7402", "192.168.1.5:7402", "[::]:7402", "example.com:7402"} {
		if isLoopback(a) {
			t.Errorf("%s taken for loopback", a)
		}
	}
}
