package view

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"framepush/internal/testutil"
	"framepush/internal/testutil/pushtest"
)

type apiDevices struct {
	Devices []DeviceState `json:"devices"`
}

func devicesJSON(t *testing.T, e *env) map[string]DeviceState {
	t.Helper()
	resp, body := get(t, e.web.URL+"/api/devices")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("/api/devices: %s %s", resp.Status, body)
	}
	var a apiDevices
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatal(err)
	}
	out := map[string]DeviceState{}
	for _, d := range a.Devices {
		out[d.Name] = d
	}
	return out
}

func TestLatestAPIAndPages(t *testing.T) {
	e := start(t, Options{}, nil)
	p := e.dial(t)
	var porch [][]byte
	for i := range 3 {
		f := pushtest.JPEG(t, i, 64, 48)
		porch = append(porch, f)
		p.MustSend("porch", fmt.Sprintf("run1-%d", i+1), f)
	}
	gate := pushtest.JPEG(t, 9, 32, 24)
	p.MustSend("gate", "run7-1", gate)

	devs := devicesJSON(t, e)
	if len(devs) != 2 {
		t.Fatalf("devices %v, want porch and gate", devs)
	}
	pd := devs["porch"]
	if pd.Frames != 3 || pd.Bytes == 0 || pd.FramesPerMinute != 3 || pd.Stale || pd.IDs.Lost != 0 || pd.IDs.Runs != 1 ||
		pd.Latest == nil || pd.Latest.ID != "run1-3" || pd.Latest.Size != int64(len(porch[2])) || pd.LatencySeconds == nil ||
		pd.LatestURL != "/devices/porch/latest.jpg" || !strings.HasPrefix(pd.Latest.Location, e.dir) {
		t.Fatalf("porch state %+v", pd)
	}

	// latest.jpg: the newest frame, with its type, validators and 304.
	resp, body := get(t, e.web.URL+"/devices/porch/latest.jpg")
	if resp.StatusCode != 200 || !bytes.Equal(body, porch[2]) || resp.Header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("latest.jpg: %s, %s, %d bytes", resp.Status, resp.Header.Get("Content-Type"), len(body))
	}
	etag, lm := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	if etag == "" || lm == "" {
		t.Fatalf("latest.jpg without validators: ETag %q Last-Modified %q", etag, lm)
	}
	if r, _ := get(t, e.web.URL+"/devices/porch/latest.jpg", "If-None-Match", etag); r.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match the current ETag: %s, want 304", r.Status)
	}
	next := pushtest.JPEG(t, 3, 64, 48)
	p.MustSend("porch", "run1-4", next)
	resp, body = get(t, e.web.URL+"/devices/porch/latest.jpg", "If-None-Match", etag)
	if resp.StatusCode != 200 || !bytes.Equal(body, next) || resp.Header.Get("ETag") == etag {
		t.Fatalf("after a new frame: %s, ETag %q (was %q)", resp.Status, resp.Header.Get("ETag"), etag)
	}
	if r, b := get(t, e.web.URL+"/devices/nobody/latest.jpg"); r.StatusCode != 404 || !strings.Contains(string(b), `"nobody"`) {
		t.Fatalf("unknown device: %s %s", r.Status, b)
	}

	// The page: a tile per device with its image URL.
	resp, body = get(t, e.web.URL+"/")
	page := string(body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(page, `data-device="porch"`) || !strings.Contains(page, `data-device="gate"`) ||
		!strings.Contains(page, `src="/devices/gate/latest.jpg?n=1"`) {
		t.Fatalf("index page: %s\n%s", resp.Status, page)
	}
	// The device page lists recent frames, newest first, with links.
	resp, body = get(t, e.web.URL+"/devices/porch/")
	page = string(body)
	if resp.StatusCode != 200 || !strings.Contains(page, "run1-4") || strings.Index(page, "run1-4") > strings.Index(page, "run1-1") ||
		!strings.Contains(page, `href="/devices/porch/frames/1"`) {
		t.Fatalf("device page: %s\n%s", resp.Status, page)
	}
	if r, b := get(t, e.web.URL+"/devices/porch/frames/1"); r.StatusCode != 200 || !bytes.Equal(b, porch[0]) {
		t.Fatalf("frames/1: %s, %d bytes", r.Status, len(b))
	}
	if r, _ := get(t, e.web.URL+"/devices/porch/frames/99"); r.StatusCode != http.StatusGone {
		t.Fatalf("frames/99: %s, want 410", r.Status)
	}
	if r, _ := get(t, e.web.URL+"/assets/view.js"); r.StatusCode != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("view.js: %s", r.Status)
	}
}

// Loss and duplicates counted from id sequences sent over the wire.
func TestLossAndDuplicatesFromIDs(t *testing.T) {
	e := start(t, Options{}, nil)
	p := e.dial(t)
	f := pushtest.JPEG(t, 1, 16, 16)
	for _, id := range []string{"a-1", "a-2", "a-5", "a-5", "a-6", "a-3", "a-6"} {
		p.MustSend("cam", id, f)
	}
	for _, id := range []string{"1", "2", "4"} { // an old agent: plain numbers
		p.MustSend("old", id, f)
	}
	devs := devicesJSON(t, e)
	if c := devs["cam"].IDs; c.Lost != 1 || c.Duplicates != 2 || c.Late != 1 || c.Runs != 1 {
		t.Fatalf("cam ids %+v: want lost 1 (a-4), duplicates 2, late 1 (a-3)", c)
	}
	if c := devs["old"].IDs; c.Lost != 1 || c.Duplicates != 0 {
		t.Fatalf("old ids %+v: want lost 1", c)
	}
}

// streamReader reads an MJPEG stream with the standard multipart parser.
func openStream(t *testing.T, url string) (*multipart.Reader, io.Closer) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode != 200 || err != nil || mt != "multipart/x-mixed-replace" || params["boundary"] == "" {
		t.Fatalf("stream: %s, Content-Type %q (%v)", resp.Status, resp.Header.Get("Content-Type"), err)
	}
	return multipart.NewReader(resp.Body, params["boundary"]), resp.Body
}

func nextPart(t *testing.T, mr *multipart.Reader) []byte {
	t.Helper()
	part, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(part)
	if err != nil {
		t.Fatal(err)
	}
	if ct := part.Header.Get("Content-Type"); ct != "image/jpeg" || part.Header.Get("Content-Length") != fmt.Sprint(len(b)) {
		t.Fatalf("part Content-Type %q, Content-Length %q for %d bytes", ct, part.Header.Get("Content-Length"), len(b))
	}
	if _, err := jpeg.Decode(bytes.NewReader(b)); err != nil {
		t.Fatalf("part is not a whole JPEG: %v", err)
	}
	return b
}

func TestStreamPartsAreTheFramesSent(t *testing.T) {
	e := start(t, Options{}, nil)
	p := e.dial(t)
	first := pushtest.JPEG(t, 0, 80, 60)
	p.MustSend("cam", "r-1", first)
	var readers []*multipart.Reader
	for range 3 { // many viewers at once
		mr, body := openStream(t, e.web.URL+"/devices/cam/stream.mjpg")
		defer body.Close()
		readers = append(readers, mr)
	}
	for _, mr := range readers {
		if got := nextPart(t, mr); !bytes.Equal(got, first) {
			t.Fatal("first part is not the newest frame")
		}
	}
	for i := 1; i < 6; i++ {
		f := pushtest.JPEG(t, i, 80, 60)
		p.MustSend("cam", fmt.Sprintf("r-%d", i+1), f)
		for _, mr := range readers {
			if got := nextPart(t, mr); !bytes.Equal(got, f) {
				t.Fatalf("part %d is not frame %d", i, i)
			}
		}
	}
	if r, _ := get(t, e.web.URL+"/devices/nobody/stream.mjpg"); r.StatusCode != 404 {
		t.Fatalf("stream of an unknown device: %s", r.Status)
	}
}

// A viewer that stops reading costs delivery nothing: frames keep being
// acknowledged, and a viewer that reads again gets the newest frame, not a
// backlog.
func TestStalledViewerDoesNotBlockDelivery(t *testing.T) {
	e := start(t, Options{}, nil)
	p := e.dial(t)
	frames := make([][]byte, 0, 200)
	for i := range 8 {
		frames = append(frames, pushtest.JPEG(t, i, 640, 480)) // tens of KiB each
	}
	p.MustSend("cam", "r-1", frames[0])
	// A raw client that asks for the stream and never reads.
	stalled, err := net.Dial("tcp", e.web.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	fmt.Fprintf(stalled, "GET /devices/cam/stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")
	// A slow reader: one that reads a part only now and then.
	mr, body := openStream(t, e.web.URL+"/devices/cam/stream.mjpg")
	defer body.Close()
	nextPart(t, mr)
	testutil.WaitFor(t, "two viewers", 10*time.Second, func() bool { v, _ := e.d.Streams(); return v == 2 })

	const n = 300
	for i := 2; i <= n; i++ {
		p.MustSend("cam", fmt.Sprintf("r-%d", i), frames[i%len(frames)])
	}
	last := frames[n%len(frames)]
	// The slow reader first gets what the kernel's socket buffers held
	// when it stopped reading (a few parts), then the newest frame: not
	// the hundreds sent meanwhile.
	for k := 0; ; k++ {
		if got := nextPart(t, mr); bytes.Equal(got, last) {
			t.Logf("slow viewer: %d buffered parts, then the newest of %d frames", k, n)
			break
		}
		if k > n/10 {
			t.Fatalf("slow viewer still reading old frames after %d parts: a backlog", k)
		}
	}
	if d := devicesJSON(t, e)["cam"]; d.Frames != n || d.IDs.Lost != 0 {
		t.Fatalf("cam %+v: want %d frames, none lost", d, n)
	}
}

func TestAccess(t *testing.T) {
	e := start(t, Options{}, nil)
	h := Access{User: "u", Password: "p w", Token: "tok123", Open: []string{"/healthz"}}.Wrap(e.d.Handler(t.Context(), HandlerOptions{}))
	mux := http.NewServeMux()
	mux.Handle("/", h)
	srv := &http.Server{Handler: mux}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	for _, c := range []struct {
		hdr  []string
		want int
	}{
		{nil, 401},
		{[]string{"Authorization", "Bearer wrong"}, 401},
		{[]string{"Authorization", "Bearer tok123"}, 200},
		{[]string{"Authorization", "Basic dTp3cm9uZw=="}, 401}, // u:wrong
		{[]string{"Authorization", "Basic dTpwIHc="}, 200},     // u:p w
	} {
		resp, _ := get(t, base+"/api/devices", c.hdr...)
		if resp.StatusCode != c.want {
			t.Errorf("%v: %s, want %d", c.hdr, resp.Status, c.want)
		}
		if c.want == 401 && len(resp.Header.Values("WWW-Authenticate")) != 2 {
			t.Errorf("401 without both challenges: %v", resp.Header.Values("WWW-Authenticate"))
		}
	}
	if resp, _ := get(t, base+"/healthz"); resp.StatusCode == 401 {
		t.Errorf("/healthz is an open path, got %s", resp.Status)
	}
}

// Devices beyond MaxDevices evict the one silent the longest; memory for
// recent frames stays within RecentBytes.
func TestBounds(t *testing.T) {
	var mu sync.Mutex
	var evicted []string
	e := start(t, Options{MaxDevices: 2, Recent: 10, RecentBytes: 3000, OnEvict: func(n string) { mu.Lock(); evicted = append(evicted, n); mu.Unlock() }}, nil)
	p := e.dial(t)
	f := pushtest.JPEG(t, 1, 32, 32)
	if len(f) > 1500 {
		t.Fatalf("test frame of %d bytes is too big for this test", len(f))
	}
	for _, n := range []string{"a", "b", "c"} {
		p.MustSend(n, "", f)
	}
	devs := devicesJSON(t, e)
	if _, ok := devs["a"]; ok || len(devs) != 2 || len(evicted) != 1 || evicted[0] != "a" {
		t.Fatalf("devices %v, evicted %v: want a evicted", devs, evicted)
	}
	for range 20 {
		p.MustSend("b", "", f)
	}
	s, _ := e.d.State("b")
	kept := 0
	for _, fi := range s.Recent {
		if fi.URL != "" {
			kept++
		}
	}
	if len(s.Recent) != 10 || kept*len(f) > 3000+len(f) || kept < 2 {
		t.Fatalf("%d recent, %d kept with images (%d bytes each, budget 3000)", len(s.Recent), kept, len(f))
	}
}

// Frames that are no image are counted and listed, but never served as
// one: the tile has no image and latest.jpg is a 404 until an image comes.
func TestNonImageFrames(t *testing.T) {
	e := start(t, Options{}, nil)
	p := e.dial(t)
	p.MustSend("sensor", "s-1", []byte("not an image"))
	d := devicesJSON(t, e)["sensor"]
	if d.Frames != 1 || d.HasImage || d.Latest == nil || d.Latest.ContentType != "" || d.Latest.URL != "" {
		t.Fatalf("state %+v", d)
	}
	if r, _ := get(t, e.web.URL+"/devices/sensor/latest.jpg"); r.StatusCode != 404 {
		t.Fatalf("latest.jpg of a device without images: %s", r.Status)
	}
	if _, b := get(t, e.web.URL+"/"); strings.Contains(string(b), "/devices/sensor/latest.jpg?n=") {
		t.Fatal("the page shows an image for a device without images")
	}
	img := pushtest.JPEG(t, 1, 16, 16)
	p.MustSend("sensor", "s-2", img)
	if r, b := get(t, e.web.URL+"/devices/sensor/latest.jpg"); r.StatusCode != 200 || !bytes.Equal(b, img) {
		t.Fatalf("latest.jpg after an image: %s", r.Status)
	}
}
