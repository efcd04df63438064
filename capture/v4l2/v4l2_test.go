package v4l2

import (
	"bytes"
	"context"
	"errors"
	"image/jpeg"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"framepush/capture"
	"framepush/capture/internal/jpegtest"
	"framepush/capture/mjpeg"
	"framepush/frame"
)

// testCamera is a C920-like table: MJPEG up to 1080p30, YUYV slower at
// the larger sizes, NTSC-style rates at 800x600, and a format framepush
// cannot use.
var testCamera = []CameraFormat{
	{FourCC: "MJPG", Description: "Motion-JPEG", Sizes: []CameraSize{
		{Width: 1920, Height: 1080, Rates: []CameraRate{{Num: 1, Den: 30}, {Num: 1, Den: 24}, {Num: 1, Den: 15}}},
		{Width: 1280, Height: 720, Rates: []CameraRate{{Num: 1, Den: 30}, {Num: 1, Den: 15}}},
		{Width: 800, Height: 600, Rates: []CameraRate{{Num: 1001, Den: 30000}, {Num: 1001, Den: 15000}}},
		{Width: 640, Height: 480, Rates: []CameraRate{{Num: 1, Den: 30}, {Num: 2, Den: 15}}},
	}},
	{FourCC: "YUYV", Description: "YUYV 4:2:2", Sizes: []CameraSize{
		{Width: 640, Height: 480, Rates: []CameraRate{{Num: 1, Den: 30}, {Num: 1, Den: 15}}},
		{Width: 1280, Height: 720, Rates: []CameraRate{{Num: 1, Den: 10}, {Num: 1, Den: 5}}},
	}},
	{FourCC: "H264", Description: "H.264", Sizes: []CameraSize{
		{Width: 1920, Height: 1080, Rates: []CameraRate{{Num: 1, Den: 30}}},
	}},
}

func TestV4L2Negotiate(t *testing.T) {
	stepwise := []CameraFormat{{FourCC: "YUYV", Description: "YUYV 4:2:2", Sizes: []CameraSize{{
		Range: true, MinWidth: 16, MinHeight: 16, StepWidth: 2, StepHeight: 2, Width: 1920, Height: 1080,
		Rates: []CameraRate{{Num: 1, Den: 60, Range: true, MaxNum: 1, MaxDen: 1}},
	}}}}
	jpegLabel := []CameraFormat{{FourCC: "JPEG", Description: "JFIF JPEG", Sizes: []CameraSize{
		{Width: 640, Height: 480, Rates: []CameraRate{{Num: 1, Den: 30}}},
	}}}
	unlisted := []CameraFormat{{FourCC: "YUYV", Description: "YUYV 4:2:2"}}
	rateRange := []CameraFormat{{FourCC: "MJPG", Description: "Motion-JPEG", Sizes: []CameraSize{
		{Width: 640, Height: 480, Rates: []CameraRate{{Num: 1, Den: 30, Range: true, MaxNum: 1, MaxDen: 2}}},
	}}}
	for _, tc := range []struct {
		name    string
		formats []CameraFormat
		opts    Options
		want    modeChoice
		errs    []string // substrings of the error; none means success
	}{
		{"auto prefers MJPEG", testCamera, Options{Format: "auto", Width: 640, Height: 480, FPS: 30},
			modeChoice{"MJPG", 640, 480, 30}, nil},
		{"auto falls back to YUYV for the rate", []CameraFormat{
			{FourCC: "MJPG", Description: "Motion-JPEG", Sizes: []CameraSize{{Width: 640, Height: 480, Rates: []CameraRate{{Num: 1, Den: 30}}}}},
			testCamera[1]}, Options{Format: "auto", Width: 640, Height: 480, FPS: 15},
			modeChoice{"YUYV", 640, 480, 15}, nil},
		{"yuyv when asked", testCamera, Options{Format: "yuyv", Width: 1280, Height: 720, FPS: 10},
			modeChoice{"YUYV", 1280, 720, 10}, nil},
		{"NTSC rate for 30", testCamera, Options{Format: "mjpeg", Width: 800, Height: 600, FPS: 30},
			modeChoice{"MJPG", 800, 600, 30000.0 / 1001}, nil},
		{"fractional rate", testCamera, Options{Format: "auto", Width: 640, Height: 480, FPS: 7.5},
			modeChoice{"MJPG", 640, 480, 7.5}, nil},
		{"largest size when none given", testCamera, Options{Format: "auto"},
			modeChoice{"MJPG", 1920, 1080, 0}, nil},
		{"no rate leaves the driver's", testCamera, Options{Format: "yuyv", Width: 1280, Height: 720},
			modeChoice{"YUYV", 1280, 720, 0}, nil},
		{"JPEG label counts as MJPEG", jpegLabel, Options{Format: "mjpeg", Width: 640, Height: 480, FPS: 30},
			modeChoice{"JPEG", 640, 480, 30}, nil},
		{"stepwise size", stepwise, Options{Format: "auto", Width: 1000, Height: 500, FPS: 25},
			modeChoice{"YUYV", 1000, 500, 25}, nil},
		{"unlisted sizes are tried", unlisted, Options{Format: "yuyv", Width: 320, Height: 240, FPS: 5},
			modeChoice{"YUYV", 320, 240, 5}, nil},
		{"rate range", rateRange, Options{Format: "mjpeg", Width: 640, Height: 480, FPS: 10},
			modeChoice{"MJPG", 640, 480, 10}, nil},

		{"rate too high for YUYV", testCamera, Options{Format: "yuyv", Width: 1280, Height: 720, FPS: 30}, modeChoice{},
			[]string{"cannot capture yuyv 1280x720 at 30 fps", "YUYV: 1280x720 runs at 10, 5 fps, not 30 fps",
				"MJPG (Motion-JPEG): 1920x1080 @ 30, 24, 15 fps; 1280x720 @ 30, 15 fps; 800x600 @ 29.97, 14.99 fps; 640x480 @ 30, 7.5 fps",
				"YUYV (YUYV 4:2:2): 640x480 @ 30, 15 fps; 1280x720 @ 10, 5 fps", "H264 (H.264): 1920x1080 @ 30 fps"}},
		{"size nobody has", testCamera, Options{Format: "auto", Width: 1024, Height: 768, FPS: 30}, modeChoice{},
			[]string{"MJPG: no 1024x768", "YUYV: no 1024x768"}},
		{"no usable format", testCamera[2:], Options{Format: "auto", Width: 1920, Height: 1080}, modeChoice{},
			[]string{"offers no MJPG or YUYV format", "H264 (H.264)"}},
		{"mjpeg asked, camera has only YUYV", testCamera[1:2], Options{Format: "mjpeg", Width: 640, Height: 480}, modeChoice{},
			[]string{"offers no MJPG format", "YUYV (YUYV 4:2:2): 640x480"}},
		{"off the step grid", stepwise, Options{Format: "yuyv", Width: 1001, Height: 500}, modeChoice{},
			[]string{"no 1001x500", "16x16 to 1920x1080, step 2x2 @ 1-60 fps"}},
		{"rate outside the range", rateRange, Options{Format: "mjpeg", Width: 640, Height: 480, FPS: 60}, modeChoice{},
			[]string{"640x480 runs at 2-30 fps, not 60 fps"}},
		{"unlisted sizes need a size", unlisted, Options{Format: "yuyv"}, modeChoice{},
			[]string{"lists no sizes, so width and height must be given"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := negotiate("/dev/video9", tc.formats, tc.opts)
			if len(tc.errs) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if got.FourCC != tc.want.FourCC || got.Width != tc.want.Width || got.Height != tc.want.Height ||
					!fPSMatch(got.FPS, tc.want.FPS) || (got.FPS == 0) != (tc.want.FPS == 0) {
					t.Fatalf("got %+v, want %+v", got, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("got %+v, want an error", got)
			}
			for _, s := range append(tc.errs, "/dev/video9") {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error lacks %q:\n%v", s, err)
				}
			}
		})
	}
}

func TestV4L2OptionsDefaultsAndLimits(t *testing.T) {
	o, err := Options{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if o.Device != "/dev/video0" || o.Format != "auto" || o.Buffers != 4 || o.JPEGQuality != 80 || o.FrameTimeout != 5*time.Second {
		t.Fatalf("defaults: %+v", o)
	}
	if o, _ := (Options{Format: " MJPEG "}).withDefaults(); o.Format != "mjpeg" {
		t.Fatalf("format not normalised: %q", o.Format)
	}
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Format: "h264"}, `format "h264" is not one of auto, mjpeg, yuyv`},
		{Options{Buffers: 1}, "buffers 1 is outside 2..8"},
		{Options{Buffers: 9}, "buffers 9 is outside 2..8"},
		{Options{Width: 640}, "give both width and height"},
		{Options{Width: -1, Height: -1}, "size -1x-1"},
		{Options{FPS: -3}, "fps -3"},
		{Options{JPEGQuality: 101}, "jpeg quality 101 is outside 1..100"},
		{Options{FrameTimeout: -time.Second}, "frame timeout -1s is negative"},
	} {
		if _, err := tc.o.withDefaults(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc.o, err, tc.want)
		}
	}
}

func TestV4L2ControlNames(t *testing.T) {
	for in, want := range map[string]string{
		"White Balance, Automatic": "white_balance_automatic",
		"Exposure Time, Absolute":  "exposure_time_absolute",
		"Power Line Frequency":     "power_line_frequency",
		"  Gain ":                  "gain",
	} {
		if got := controlName(in); got != want {
			t.Errorf("controlName(%q) = %q, want %q", in, got, want)
		}
		if controlKey(in) != controlKey(want) || controlKey(in) != controlKey(strings.ToUpper(strings.ReplaceAll(want, "_", " "))) {
			t.Errorf("%q does not match %q", in, want)
		}
	}
}

var testControls = []control{
	{ID: 1, Name: "Brightness", Min: 0, Max: 255, Kind: "int"},
	{ID: 2, Name: "White Balance, Automatic", Min: 0, Max: 1, Kind: "bool"},
	{ID: 3, Name: "White Balance Temperature", Min: 2000, Max: 6500, Kind: "int"},
	{ID: 4, Name: "Auto Exposure", Min: 0, Max: 3, Kind: "menu"},
	{ID: 5, Name: "Exposure Time, Absolute", Min: 3, Max: 2047, Kind: "int"},
}

func TestV4L2ApplyControls(t *testing.T) {
	var order []uint32
	values := map[uint32]int32{}
	set := func(id uint32, v int32) error {
		order = append(order, id)
		values[id] = v
		return nil
	}
	applied, err := applyControls("/dev/video0", testControls, map[string]int32{
		"white_balance_temperature": 4000,
		"WhiteBalanceAutomatic":     0,
		"auto exposure":             1,
		"Exposure_Time_Absolute":    100,
		"BRIGHTNESS":                10,
	}, set)
	if err != nil {
		t.Fatal(err)
	}
	// Automatic modes first, then by name: a manual value is refused while
	// its automatic mode is on.
	if want := []uint32{4, 2, 1, 5, 3}; !slices.Equal(order, want) {
		t.Fatalf("set order %v, want %v", order, want)
	}
	if values[3] != 4000 || values[1] != 10 {
		t.Fatalf("values %v", values)
	}
	if want := "auto_exposure=1,white_balance_automatic=0,brightness=10,exposure_time_absolute=100,white_balance_temperature=4000"; strings.Join(applied, ",") != want {
		t.Fatalf("applied %v", applied)
	}
}

func TestV4L2ApplyControlsErrors(t *testing.T) {
	called := false
	set := func(uint32, int32) error { called = true; return nil }
	_, err := applyControls("/dev/video0", testControls, map[string]int32{"focus": 1, "brightness": 300}, set)
	if err == nil {
		t.Fatal("accepted an unknown control")
	}
	for _, s := range []string{`no control "focus"`, "control brightness: value 300 is outside 0..255",
		"auto_exposure (menu 0..3)", "white_balance_temperature (int 2000..6500)", "white_balance_automatic (bool 0..1)"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error lacks %q:\n%v", s, err)
		}
	}
	if called {
		t.Fatal("a control was set although the request was invalid")
	}
	_, err = applyControls("/dev/video0", testControls, map[string]int32{"exposure_time_absolute": 50},
		func(uint32, int32) error { return syscall.EACCES })
	if !errors.Is(err, syscall.EACCES) || !strings.Contains(err.Error(), "switch its automatic mode to manual first") {
		t.Fatalf("EACCES: %v", err)
	}
	if _, err := applyControls("/dev/video0", nil, map[string]int32{"gain": 1}, set); err == nil || !strings.Contains(err.Error(), "(none)") {
		t.Fatalf("camera without controls: %v", err)
	}
}

func TestV4L2IoctlNumbers(t *testing.T) {
	// Values from linux/videodev2.h as compiled for 64-bit and 32-bit ARM.
	for _, tc := range []struct {
		name          string
		dir, nr, size uintptr
		want          uintptr
	}{
		{"VIDIOC_QUERYCAP", iOCRead, 0, 104, 0x80685600},
		{"VIDIOC_ENUM_FMT", iOCRead | iOCWrite, 2, 64, 0xc0405602},
		{"VIDIOC_G_FMT 64-bit", iOCRead | iOCWrite, 4, 208, 0xc0d05604},
		{"VIDIOC_G_FMT 32-bit", iOCRead | iOCWrite, 4, 204, 0xc0cc5604},
		{"VIDIOC_ENUM_FRAMESIZES", iOCRead | iOCWrite, 74, 44, 0xc02c564a},
		{"VIDIOC_ENUM_FRAMEINTERVALS", iOCRead | iOCWrite, 75, 52, 0xc034564b},
	} {
		if got := iOC(tc.dir, tc.nr, tc.size); got != tc.want {
			t.Errorf("%s: %#x, want %#x", tc.name, got, tc.want)
		}
	}
}

func TestV4L2FullRange(t *testing.T) {
	for _, tc := range []struct {
		f    pixFormat
		want bool
	}{
		{pixFormat{}, false},                // default quantization of YUV: limited
		{pixFormat{Colorspace: 1}, false},   // SMPTE 170M
		{pixFormat{Quantization: 1}, true},  // full range, said explicitly
		{pixFormat{Quantization: 2}, false}, // limited range, said explicitly
		{pixFormat{Colorspace: 7}, true},    // JPEG colorspace defaults to full
		{pixFormat{Colorspace: 7, Quantization: 2}, false},
	} {
		if got := fullRange(tc.f); got != tc.want {
			t.Errorf("%+v: %v, want %v", tc.f, got, tc.want)
		}
	}
}

// --- a fake driver ---

// fakeEvent is what the fake driver does when the source waits and no
// filled buffer is pending.
type fakeEvent struct {
	frame    []byte        // fill a buffer with this frame
	timeout  bool          // nothing within the wait
	waitErr  error         // the wait fails
	dqErr    error         // the wait succeeds, the dequeue fails
	spurious bool          // the wait succeeds, the dequeue finds nothing
	hook     func()        // run during the wait (e.g. cancel a context)
	elapse   time.Duration // the fake clock moves on by this much
}

// fakeCam is a driver with a few buffers, a done queue and a script. It
// checks the rules the real one enforces by crashing: no buffer touched
// after Release, nothing touched after Close, every buffer given back.
type fakeCam struct {
	t     *testing.T
	mu    sync.Mutex
	now   time.Time
	bufs  [][]byte
	free  []uint32
	done  [][2]uint32 // index, bytes used
	held  map[uint32]bool
	dqErr error

	script []fakeEvent
	waits  int
	closes int
	closed bool

	// Negotiation behaviour.
	pix       pixFormat
	setFmtErr error
	asked     [3]uint32
	fpsErr    error
	fpsGot    float64
	ctrls     []control
	set       map[uint32]int32
	startErr  error
	buffers   int
}

func newFakeCam(t *testing.T, nbuf, size int) *fakeCam {
	c := &fakeCam{t: t, now: time.Unix(1700000000, 0), held: map[uint32]bool{}, set: map[uint32]int32{}}
	for i := 0; i < nbuf; i++ {
		c.bufs = append(c.bufs, make([]byte, size))
		c.free = append(c.free, uint32(i))
	}
	return c
}

func (c *fakeCam) clock() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeCam) alive(op string) {
	if c.closed {
		c.t.Errorf("%s after Close: the real device would crash the process", op)
	}
}

// fill puts a frame in a free buffer and queues it as done.
func (c *fakeCam) fill(frame []byte) {
	if len(c.free) == 0 {
		c.t.Fatal("fake driver: no free buffer (a frame was never released?)")
	}
	i := c.free[0]
	c.free = c.free[1:]
	n := copy(c.bufs[i], frame)
	c.done = append(c.done, [2]uint32{i, uint32(n)})
}

// stale queues frames as if the camera had filled them while nobody asked.
func (c *fakeCam) stale(frames ...[]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range frames {
		c.fill(f)
	}
}

func (c *fakeCam) push(ev ...fakeEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.script = append(c.script, ev...)
}

func (c *fakeCam) SetFormat(fourcc, w, h uint32) (pixFormat, error) {
	c.asked = [3]uint32{fourcc, w, h}
	if c.setFmtErr != nil {
		return pixFormat{}, c.setFmtErr
	}
	pix := c.pix
	if pix.PixelFormat == 0 {
		pix.PixelFormat = fourcc
	}
	if pix.Width == 0 {
		pix.Width, pix.Height = w, h
	}
	return pix, nil
}

func (c *fakeCam) SetFPS(fps float64) (float64, error) {
	if c.fpsErr != nil {
		return 0, c.fpsErr
	}
	if c.fpsGot != 0 {
		return c.fpsGot, nil
	}
	return fps, nil
}

func (c *fakeCam) Controls() []control { return c.ctrls }

func (c *fakeCam) SetControl(id uint32, v int32) error {
	c.set[id] = v
	return nil
}

func (c *fakeCam) Start(n int) error {
	c.buffers = n
	return c.startErr
}

func (c *fakeCam) Wait(seconds uint32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.alive("Wait")
	if seconds < 1 {
		c.t.Errorf("Wait(%d): a zero timeout makes poll return at once, a busy loop", seconds)
	}
	c.waits++
	if len(c.done) > 0 {
		return nil
	}
	if len(c.script) == 0 {
		c.now = c.now.Add(time.Duration(seconds) * time.Second)
		return errTimeout
	}
	ev := c.script[0]
	c.script = c.script[1:]
	c.now = c.now.Add(ev.elapse)
	if ev.hook != nil {
		c.mu.Unlock()
		ev.hook()
		c.mu.Lock()
	}
	switch {
	case ev.frame != nil:
		c.fill(ev.frame)
	case ev.timeout:
		c.now = c.now.Add(time.Duration(seconds) * time.Second)
		return errTimeout
	case ev.waitErr != nil:
		return ev.waitErr
	case ev.dqErr != nil:
		c.dqErr = ev.dqErr
	}
	return nil
}

func (c *fakeCam) Dequeue() ([]byte, uint32, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.alive("Dequeue")
	if err := c.dqErr; err != nil {
		c.dqErr = nil
		return nil, 0, err
	}
	if len(c.done) == 0 {
		return nil, 0, errAgain
	}
	d := c.done[0]
	c.done = c.done[1:]
	c.held[d[0]] = true
	return c.bufs[d[0]][:d[1]], d[0], nil
}

func (c *fakeCam) Release(i uint32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.alive("Release")
	if !c.held[i] {
		c.t.Errorf("Release(%d) of a buffer not dequeued", i)
	}
	delete(c.held, i)
	// The driver writes the next frame into it: anything still aliasing
	// the buffer sees garbage.
	for j := range c.bufs[i] {
		c.bufs[i][j] = 0xEE
	}
	c.free = append(c.free, i)
	return nil
}

func (c *fakeCam) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closes++
	c.closed = true
	return nil
}

// checkReleased fails if a buffer is still held by the source.
func (c *fakeCam) checkReleased() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.held) > 0 {
		c.t.Fatalf("buffers never given back to the driver: %v", c.held)
	}
}

// fakeSys hands out one fake camera.
type fakeSys struct {
	info     CameraInfo
	probeErr error
	openErr  error
	cam      *fakeCam
	probed   []string
}

func (s *fakeSys) Probe(path string) (CameraInfo, error) {
	s.probed = append(s.probed, path)
	return s.info, s.probeErr
}

func (s *fakeSys) Open(string) (handle, error) {
	if s.openErr != nil {
		return nil, s.openErr
	}
	return s.cam, nil
}

func testSys(t *testing.T, formats []CameraFormat) *fakeSys {
	return &fakeSys{
		info: CameraInfo{Driver: "uvcvideo", Card: "Fake Cam", Bus: "usb-1", Caps: capVideoCapture | capStreaming, Capture: true, Formats: formats},
		cam:  newFakeCam(t, 4, 1<<20),
	}
}

// testLog collects log output.
type testLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *testLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *testLog) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func openTest(t *testing.T, sys *fakeSys, opts Options) (*Source, *testLog) {
	t.Helper()
	logs := &testLog{}
	s, err := openWith(sys, opts, logs.logger(), sys.cam.clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, logs
}

// testMJPEG returns a camera-style MJPEG frame (no DHT) of w x h whose
// content depends on n, and the pixels it should decode to.
func testMJPEG(t *testing.T, n int) []byte {
	t.Helper()
	m := jpegtest.Image(64, 48)
	m.Pix[0] = uint8(n)
	return jpegtest.StripDHT(t, jpegtest.Encode(t, m, 80))
}

func TestV4L2CaptureMJPEGPassThrough(t *testing.T) {
	sys := testSys(t, testCamera)
	s, _ := openTest(t, sys, Options{Device: "/dev/video9", Width: 640, Height: 480, FPS: 30, Buffers: 3})
	if sys.cam.buffers != 3 {
		t.Fatalf("streamed with %d buffers, want 3", sys.cam.buffers)
	}
	if f := s.Format(); f.FourCC != "MJPG" || f.Width != 640 || f.FPS != 30 {
		t.Fatalf("format %+v", f)
	}
	frames := [][]byte{testMJPEG(t, 1), testMJPEG(t, 2)}
	padded := append(append([]byte(nil), frames[1]...), make([]byte, 100)...)
	sys.cam.push(fakeEvent{frame: frames[0]}, fakeEvent{frame: padded})
	var got []frame.Frame
	for i := 0; i < 2; i++ {
		f, err := s.Capture(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		sys.cam.checkReleased()
		got = append(got, f)
	}
	for i, f := range got {
		if f.Seq != uint64(i+1) || f.Format != "jpeg" || f.Source != "v4l2:/dev/video9" || f.Time.IsZero() {
			t.Fatalf("frame %d: %+v", i, f)
		}
		// The driver has scribbled over every buffer since: the frame must
		// own its bytes.
		want, err := mjpeg.Fix(nil, frames[i])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(f.Data, want) {
			t.Fatalf("frame %d: data differs from the camera's frame plus standard tables", i)
		}
		if _, err := jpeg.Decode(bytes.NewReader(f.Data)); err != nil {
			t.Fatalf("frame %d does not decode: %v", i, err)
		}
	}
	if &got[0].Data[0] == &got[1].Data[0] {
		t.Fatal("two frames share a buffer")
	}
	if st := s.Stats(); st.Frames != 2 || st.Stale != 0 || st.Truncated != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestV4L2CaptureSkipsStaleFrames(t *testing.T) {
	sys := testSys(t, testCamera)
	s, _ := openTest(t, sys, Options{Width: 640, Height: 480})
	old1, old2, fresh := testMJPEG(t, 1), testMJPEG(t, 2), testMJPEG(t, 3)
	sys.cam.stale(old1, old2)
	sys.cam.push(fakeEvent{frame: fresh})
	f, err := s.Capture(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want, _ := mjpeg.Fix(nil, fresh)
	if !bytes.Equal(f.Data, want) {
		t.Fatal("Capture returned a frame queued before it was called")
	}
	if st := s.Stats(); st.Stale != 2 || st.Frames != 1 {
		t.Fatalf("stats %+v, want 2 stale, 1 frame", st)
	}
	sys.cam.checkReleased()
}

func TestV4L2CaptureDropsBadFrames(t *testing.T) {
	sys := testSys(t, testCamera)
	s, logs := openTest(t, sys, Options{Width: 640, Height: 480})
	good := testMJPEG(t, 7)
	sys.cam.push(
		fakeEvent{frame: good[:len(good)/2]},                            // cut short
		fakeEvent{frame: append([]byte{0xFF, 0xD8, 0x12}, good[2:]...)}, // broken marker
		fakeEvent{frame: []byte{}},                                      // empty
		fakeEvent{frame: good},
	)
	f, err := s.Capture(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jpeg.Decode(bytes.NewReader(f.Data)); err != nil {
		t.Fatalf("returned frame does not decode: %v", err)
	}
	if st := s.Stats(); st.Truncated != 2 || st.Corrupt != 1 || st.Frames != 1 {
		t.Fatalf("stats %+v, want 2 truncated, 1 corrupt, 1 frame", st)
	}
	sys.cam.checkReleased()
	if !strings.Contains(logs.String(), "dropped a bad frame") {
		t.Fatalf("drop not logged:\n%s", logs)
	}
}

func TestV4L2CaptureYUYV(t *testing.T) {
	// The driver pads rows to 1344 bytes and rounds the asked 642x480 down
	// to 640x480: the encoder must follow the driver, not the request.
	stepwise := []CameraFormat{{FourCC: "YUYV", Description: "YUYV 4:2:2", Sizes: []CameraSize{{
		Range: true, MinWidth: 16, MinHeight: 16, StepWidth: 2, StepHeight: 2, Width: 1920, Height: 1080}}}}
	sys := testSys(t, stepwise)
	sys.cam.pix = pixFormat{Width: 640, Height: 480, BytesPerLine: 1344, SizeImage: 1344 * 480}
	s, logs := openTest(t, sys, Options{Format: "yuyv", Width: 642, Height: 480, JPEGQuality: 90})
	if got := s.Format(); got.Width != 640 || got.BytesPerLine != 1344 || got.FullRange {
		t.Fatalf("format %+v", got)
	}
	if !strings.Contains(logs.String(), "camera adjusted the frame size") {
		t.Fatalf("size change not logged:\n%s", logs)
	}
	if sys.cam.asked != [3]uint32{fourCCCode("YUYV"), 642, 480} {
		t.Fatalf("asked the driver for %v", sys.cam.asked)
	}
	frame := jpegtest.BarsFrame(640, 480, 1344, false)
	sys.cam.push(fakeEvent{frame: frame[:len(frame)-100]}, fakeEvent{frame: frame})
	f, err := s.Capture(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	jpegtest.CheckBars(t, f.Data, 640, 480, 8)
	if st := s.Stats(); st.Truncated != 1 || st.Frames != 1 {
		t.Fatalf("stats %+v, want the short frame dropped", st)
	}
	sys.cam.checkReleased()
}

func TestV4L2CaptureStallIsDeviceGone(t *testing.T) {
	sys := testSys(t, testCamera)
	s, _ := openTest(t, sys, Options{Width: 640, Height: 480, FrameTimeout: 3 * time.Second})
	// No script: every wait times out after a (fake) second.
	_, err := s.Capture(context.Background())
	if !errors.Is(err, capture.ErrDeviceGone) || !strings.Contains(err.Error(), "no frame for 3s") {
		t.Fatalf("got %v, want ErrDeviceGone after 3s", err)
	}
	if sys.cam.waits != 3 {
		t.Fatalf("%d one-second waits, want 3", sys.cam.waits)
	}
	// The loss is sticky: the device is not touched again.
	_, err2 := s.Capture(context.Background())
	if err2 != err || sys.cam.waits != 3 {
		t.Fatalf("second Capture: %v after %d waits", err2, sys.cam.waits)
	}
}

func TestV4L2CaptureOnlyBadFramesIsDeviceGone(t *testing.T) {
	sys := testSys(t, testCamera)
	s, _ := openTest(t, sys, Options{Width: 640, Height: 480, FrameTimeout: 2 * time.Second})
	bad := testMJPEG(t, 1)[:300]
	for i := 0; i < 50; i++ {
		sys.cam.push(fakeEvent{frame: bad, elapse: 100 * time.Millisecond})
	}
	_, err := s.Capture(context.Background())
	if !errors.Is(err, capture.ErrDeviceGone) || !errors.Is(err, mjpeg.ErrTruncated) || !strings.Contains(err.Error(), "no valid frame for 2s") {
		t.Fatalf("got %v", err)
	}
	if st := s.Stats(); st.Truncated < 19 || st.Truncated > 21 {
		t.Fatalf("%d truncated frames in 2s at 10 fps", st.Truncated)
	}
	sys.cam.checkReleased()
}

func TestV4L2CaptureDriverErrorsAreDeviceGone(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ev    fakeEvent
		errno error
		text  string
	}{
		{"unplugged", fakeEvent{dqErr: syscall.ENODEV}, syscall.ENODEV, "dequeue a frame"},
		{"I/O error", fakeEvent{dqErr: syscall.EIO}, syscall.EIO, "dequeue a frame"},
		{"poll fails", fakeEvent{waitErr: syscall.EBADF}, syscall.EBADF, "wait for a frame"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sys := testSys(t, testCamera)
			s, logs := openTest(t, sys, Options{Width: 640, Height: 480})
			sys.cam.push(tc.ev)
			_, err := s.Capture(context.Background())
			if !errors.Is(err, capture.ErrDeviceGone) || !errors.Is(err, tc.errno) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("got %v", err)
			}
			if !strings.Contains(logs.String(), "camera lost") {
				t.Fatalf("loss not logged:\n%s", logs)
			}
		})
	}
	t.Run("stale drain fails", func(t *testing.T) {
		sys := testSys(t, testCamera)
		s, _ := openTest(t, sys, Options{Width: 640, Height: 480})
		sys.cam.dqErr = syscall.ENODEV
		if _, err := s.Capture(context.Background()); !errors.Is(err, capture.ErrDeviceGone) || !strings.Contains(err.Error(), "drain") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestV4L2CaptureSpuriousWakeupsDoNotSpin(t *testing.T) {
	sys := testSys(t, testCamera)
	s, _ := openTest(t, sys, Options{Width: 640, Height: 480})
	for i := 0; i < 100; i++ {
		sys.cam.push(fakeEvent{spurious: true})
	}
	_, err := s.Capture(context.Background())
	if !errors.Is(err, capture.ErrDeviceGone) || !strings.Contains(err.Error(), "ready 32 times in a row") {
		t.Fatalf("got %v", err)
	}
	if sys.cam.waits != maxSpurious {
		t.Fatalf("%d waits", sys.cam.waits)
	}
}

func TestV4L2CaptureContext(t *testing.T) {
	sys := testSys(t, testCamera)
	s, _ := openTest(t, sys, Options{Width: 640, Height: 480, FrameTimeout: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Capture(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	sys.cam.push(fakeEvent{timeout: true}, fakeEvent{timeout: true, hook: cancel})
	if _, err := s.Capture(ctx); !errors.Is(err, context.Canceled) || errors.Is(err, capture.ErrDeviceGone) {
		t.Fatalf("context cancelled while waiting: %v", err)
	}
	// The camera is fine: the next Capture works.
	sys.cam.push(fakeEvent{frame: testMJPEG(t, 1)})
	if _, err := s.Capture(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestV4L2CloseIsIdempotentAndFinal(t *testing.T) {
	sys := testSys(t, testCamera)
	s, logs := openTest(t, sys, Options{Width: 640, Height: 480})
	for i := 0; i < 3; i++ {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if sys.cam.closes != 1 {
		t.Fatalf("device closed %d times, want once", sys.cam.closes)
	}
	if _, err := s.Capture(context.Background()); err == nil || errors.Is(err, capture.ErrDeviceGone) || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Capture after Close: %v", err)
	}
	if !strings.Contains(logs.String(), "camera closed") {
		t.Fatalf("close not logged:\n%s", logs)
	}
}

func TestV4L2CloseWaitsForCapture(t *testing.T) {
	sys := testSys(t, testCamera)
	s, _ := openTest(t, sys, Options{Width: 640, Height: 480, FrameTimeout: time.Hour})
	inWait := make(chan struct{})
	release := make(chan struct{})
	sys.cam.push(fakeEvent{timeout: true, hook: func() {
		close(inWait)
		<-release // a one-second wait in progress
	}})
	done := make(chan error, 1)
	go func() {
		_, err := s.Capture(context.Background())
		done <- err
	}()
	<-inWait
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	// Close must not close the device under the running wait; it can only
	// finish after Capture let go.
	for !s.closing.Load() {
		time.Sleep(time.Millisecond)
	}
	select {
	case <-closed:
		t.Fatal("Close returned while Capture still used the device")
	default:
	}
	close(release)
	if err := <-done; err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Capture: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if sys.cam.closes != 1 {
		t.Fatalf("closes %d", sys.cam.closes)
	}
}

func TestOpenV4L2Failures(t *testing.T) {
	metadata := CameraInfo{Driver: "uvcvideo", Card: "Fake Cam", Caps: capMetaCapture | capStreaming}
	for _, tc := range []struct {
		name   string
		setup  func(*fakeSys)
		opts   Options
		want   []string
		errno  error
		closed int // device closes expected (-1: never opened)
	}{
		{"no such device", func(s *fakeSys) { s.probeErr = &pathError{"open", "/dev/video9", syscall.ENOENT} },
			Options{}, []string{"no such camera", "framepush devices"}, syscall.ENOENT, -1},
		{"no permission", func(s *fakeSys) { s.probeErr = &pathError{"open", "/dev/video9", syscall.EACCES} },
			Options{}, []string{"video group"}, syscall.EACCES, -1},
		{"metadata node", func(s *fakeSys) { s.info = metadata },
			Options{}, []string{"metadata node, not a camera", "Fake Cam"}, nil, -1},
		{"impossible size", nil, Options{Width: 4000, Height: 3000},
			[]string{"no 4000x3000", "MJPG (Motion-JPEG): 1920x1080"}, nil, -1},
		{"busy", func(s *fakeSys) { s.cam.setFmtErr = syscall.EBUSY },
			Options{Width: 640, Height: 480}, []string{"set format MJPG 640x480", "in use by another program"}, syscall.EBUSY, 1},
		{"driver picks another format", func(s *fakeSys) { s.cam.pix.PixelFormat = fourCCCode("NV12") },
			Options{Width: 640, Height: 480}, []string{"asked for MJPG, the driver set NV12"}, nil, 1},
		{"bad control", func(s *fakeSys) { s.cam.ctrls = testControls },
			Options{Width: 640, Height: 480, Controls: map[string]int32{"zoom": 2}}, []string{`no control "zoom"`, "brightness (int 0..255)"}, nil, 1},
		{"no bandwidth", func(s *fakeSys) { s.cam.startErr = syscall.ENOSPC },
			Options{Width: 640, Height: 480}, []string{"start streaming with 4 buffers", "USB bandwidth"}, syscall.ENOSPC, 1},
		{"bad options", nil, Options{Buffers: 20}, []string{"buffers 20 is outside 2..8"}, nil, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sys := testSys(t, testCamera)
			if tc.setup != nil {
				tc.setup(sys)
			}
			tc.opts.Device = "/dev/video9"
			s, err := openWith(sys, tc.opts, nil, time.Now)
			if err == nil {
				s.Close()
				t.Fatal("opened")
			}
			if s != nil {
				t.Fatal("returned a source with the error")
			}
			for _, w := range append(tc.want, "/dev/video9") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if tc.errno != nil && !errors.Is(err, tc.errno) {
				t.Errorf("error does not wrap %v: %v", tc.errno, err)
			}
			if want := max(tc.closed, 0); sys.cam.closes != want {
				t.Errorf("device closed %d times, want %d", sys.cam.closes, want)
			}
		})
	}
}

func TestOpenV4L2SetsRateAndControls(t *testing.T) {
	sys := testSys(t, testCamera)
	sys.cam.ctrls = testControls
	sys.cam.fpsGot = 15 // the driver ignores us
	s, logs := openTest(t, sys, Options{Width: 640, Height: 480, FPS: 30,
		Controls: map[string]int32{"Brightness": 200, "white balance automatic": 0}})
	if sys.cam.set[1] != 200 || sys.cam.set[2] != 0 || len(sys.cam.set) != 2 {
		t.Fatalf("controls set %v", sys.cam.set)
	}
	if s.Format().FPS != 15 {
		t.Fatalf("FPS %v, want the driver's 15", s.Format().FPS)
	}
	out := logs.String()
	for _, w := range []string{"camera runs at another frame rate", "camera opened", `controls="white_balance_automatic=0,brightness=200"`} {
		if !strings.Contains(out, w) {
			t.Errorf("log lacks %q:\n%s", w, out)
		}
	}

	// A driver without rate control still streams.
	sys = testSys(t, testCamera)
	sys.cam.fpsErr = syscall.ENOTTY
	s, logs = openTest(t, sys, Options{Width: 640, Height: 480, FPS: 30})
	if s.Format().FPS != 0 || !strings.Contains(logs.String(), "did not take the frame rate") {
		t.Fatalf("FPS %v, log:\n%s", s.Format().FPS, logs)
	}
}

func TestV4L2OpenerReturnsUntypedNil(t *testing.T) {
	open := Opener(Options{Device: "/nonexistent/video99"}, nil)
	src, err := open(context.Background())
	if err == nil {
		src.Close()
		t.Fatal("opened a device that does not exist")
	}
	if src != nil {
		t.Fatalf("factory returned a non-nil Source (%T) with its error", src)
	}
	if defaultSystem != nil && !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("want ENOENT, got %v", err)
	}
}

// TestV4L2KernelSide runs what can run of the real kernel side without a
// camera.
func TestV4L2KernelSide(t *testing.T) {
	if defaultSystem == nil {
		t.Skip("no V4L2 on this OS")
	}
	if c, ok := defaultSystem.(interface{ selfCheck() error }); ok {
		if err := c.selfCheck(); err != nil {
			t.Fatal(err)
		}
	}
	_, err := defaultSystem.Probe("/dev/null")
	if errors.Is(err, syscall.ENOSYS) {
		t.Skip("ioctls are not emulated here (qemu-user)")
	}
	if err == nil || !strings.Contains(err.Error(), "not a V4L2 device") {
		t.Fatalf("probe of /dev/null: %v", err)
	}
	_, err = defaultSystem.Probe("/nonexistent/video0")
	if !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("probe of a missing node: %v", err)
	}
}
