package dir

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"time"

	"framepush/capture"
	"framepush/capture/internal/jpegtest"
	"framepush/frame"
)

func testPNG(t *testing.T) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 8, 6))
	img.SetGray(3, 2, color.Gray{Y: 200})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func testWrite(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func testNew(t *testing.T, opts Options) (*Source, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, &logs
}

func testCapture(t *testing.T, d *Source) frame.Frame {
	t.Helper()
	f, err := d.Capture(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, format, err := image.Decode(bytes.NewReader(f.Data)); err != nil || format != string(f.Format) {
		t.Fatalf("frame %d (%s) decodes as %q: %v", f.Seq, f.Format, format, err)
	}
	return f
}

func TestDirSourceOrderSkipAndExhaust(t *testing.T) {
	dir := t.TempDir()
	jpg := jpegtest.Noise(t, 16, 16, 61)
	pngData := testPNG(t)
	testWrite(t, dir, "b.jpg", jpg)
	testWrite(t, dir, "a.png", pngData)
	testWrite(t, dir, "c.JPEG", pngData) // a PNG misnamed: the bytes decide
	testWrite(t, dir, "d.jpg", []byte("<html>not an image</html>"))
	testWrite(t, dir, "e.jpg", jpg[:len(jpg)/2])
	testWrite(t, dir, "f.png", pngData[:len(pngData)-5])
	testWrite(t, dir, "g.jpg", nil)
	testWrite(t, dir, "h.jpeg", jpg)
	testWrite(t, dir, "notes.txt", jpg)
	testWrite(t, dir, ".partial.jpg", jpg)
	if err := os.Mkdir(filepath.Join(dir, "sub.jpg"), 0o755); err != nil {
		t.Fatal(err)
	}

	d, logs := testNew(t, Options{Dir: dir})
	want := []struct {
		name, format string
		data         []byte
	}{{"a.png", "png", pngData}, {"b.jpg", "jpeg", jpg}, {"c.JPEG", "png", pngData}, {"h.jpeg", "jpeg", jpg}}
	for i, w := range want {
		f := testCapture(t, d)
		if f.Seq != uint64(i+1) || string(f.Format) != w.format || !bytes.Equal(f.Data, w.data) ||
			f.Source != "dir:"+dir || f.Time.IsZero() {
			t.Fatalf("frame %d: seq %d format %q source %q, %d bytes; want %s", i+1, f.Seq, f.Format, f.Source,
				len(f.Data), w.name)
		}
	}
	for i := 0; i < 2; i++ {
		if _, err := d.Capture(context.Background()); !errors.Is(err, ErrExhausted) {
			t.Fatalf("after the last file: %v, want ErrExhausted", err)
		}
	}
	for _, want := range []string{
		"file=d.jpg reason=\"neither JPEG nor PNG (starts with 3c 68 74 6d",
		"file=e.jpg reason=\"JPEG of " + strconv.Itoa(len(jpg)/2) + " bytes: frame truncated: ",
		"file=f.png reason=\"PNG does not end with an IEND chunk",
		"file=g.jpg reason=\"file is empty\"",
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs.String(), "partial") || strings.Contains(logs.String(), "notes") {
		t.Errorf("ignored names were looked at:\n%s", logs)
	}
}

func TestDirSourceVanishedAndOversizedFiles(t *testing.T) {
	dir := t.TempDir()
	jpg := jpegtest.Noise(t, 16, 16, 62)
	big := jpegtest.Noise(t, 64, 64, 63)
	testWrite(t, dir, "1.jpg", jpg)
	testWrite(t, dir, "2.jpg", big)
	testWrite(t, dir, "3.jpg", jpg)
	d, logs := testNew(t, Options{Dir: dir, MaxFileSize: int64(len(big) - 1)})
	if err := os.Remove(filepath.Join(dir, "1.jpg")); err != nil {
		t.Fatal(err)
	}
	if f := testCapture(t, d); f.Seq != 1 || !bytes.Equal(f.Data, jpg) {
		t.Fatalf("got frame %d of %d bytes, want 3.jpg", f.Seq, len(f.Data))
	}
	for _, want := range []string{"file=1.jpg reason=\"file vanished\"", "file=2.jpg reason=\"file is"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	if !strings.Contains(logs.String(), "-byte limit") {
		t.Errorf("oversized file's reason does not state the limit:\n%s", logs)
	}
}

func TestDirSourceLoopRescans(t *testing.T) {
	dir := t.TempDir()
	jpgA := jpegtest.Noise(t, 16, 16, 64)
	jpgB := jpegtest.Noise(t, 16, 16, 65)
	jpgC := jpegtest.Noise(t, 16, 16, 66)
	testWrite(t, dir, "a.jpg", jpgA)
	testWrite(t, dir, "b.jpg", jpgB)
	d, _ := testNew(t, Options{Dir: dir, Loop: true})

	var got [][]byte
	for i := 0; i < 2; i++ {
		got = append(got, testCapture(t, d).Data)
	}
	testWrite(t, dir, "c.jpg", jpgC) // appears in the next pass
	for i := 0; i < 4; i++ {
		f := testCapture(t, d)
		if f.Seq != uint64(len(got)+1) {
			t.Fatalf("seq %d, want %d", f.Seq, len(got)+1)
		}
		got = append(got, f.Data)
	}
	want := [][]byte{jpgA, jpgB, jpgA, jpgB, jpgC, jpgA}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("frame %d is not the expected file", i+1)
		}
	}
}

func TestDirSourceLoopWithoutReadableImages(t *testing.T) {
	dir := t.TempDir()
	testWrite(t, dir, "a.jpg", []byte("nope"))
	d, _ := testNew(t, Options{Dir: dir, Loop: true})
	for i := 0; i < 2; i++ { // one error per pass, never a spin
		_, err := d.Capture(context.Background())
		if !errors.Is(err, capture.ErrDeviceGone) || !strings.Contains(err.Error(), "none of the 1 image files in the folder was readable") {
			t.Fatalf("pass without a readable image: %v", err)
		}
	}
	jpg := jpegtest.Noise(t, 16, 16, 67)
	testWrite(t, dir, "b.jpg", jpg)
	if f := testCapture(t, d); !bytes.Equal(f.Data, jpg) || f.Seq != 1 {
		t.Fatalf("after a good file appeared: seq %d", f.Seq)
	}
	os.Remove(filepath.Join(dir, "a.jpg"))
	os.Remove(filepath.Join(dir, "b.jpg"))
	_, err := d.Capture(context.Background())
	if !errors.Is(err, capture.ErrDeviceGone) || !strings.Contains(err.Error(), "no .jpg, .jpeg or .png files left") {
		t.Fatalf("emptied folder: %v", err)
	}
	os.RemoveAll(dir)
	if _, err := d.Capture(context.Background()); !errors.Is(err, capture.ErrDeviceGone) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("removed folder: %v", err)
	}
}

func TestDirSourceOptionsAndLifecycle(t *testing.T) {
	empty := t.TempDir()
	testWrite(t, empty, "readme.txt", []byte("x"))
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{}, "no directory given"},
		{Options{Dir: filepath.Join(empty, "missing")}, "reading " + filepath.Join(empty, "missing")},
		{Options{Dir: empty}, "no .jpg, .jpeg or .png files in " + empty},
		{Options{Dir: empty, MaxFileSize: -1}, "max file size -1 is negative"},
	} {
		if _, err := New(tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want it to mention %q", tc.opts, err, tc.want)
		}
	}
	dir := t.TempDir()
	testWrite(t, dir, "a.jpg", jpegtest.Noise(t, 16, 16, 68))
	d, _ := testNew(t, Options{Dir: dir})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.Capture(ctx); err != context.Canceled {
		t.Fatalf("cancelled capture: %v", err)
	}
	d.Close()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Capture(context.Background()); err == nil || !strings.Contains(err.Error(), "after close") {
		t.Fatalf("capture after close: %v", err)
	}
}

// A FIFO named like an image used to block the folder's replay for good in
// open(2), with nothing logged. It is skipped now, with one warning for the
// file (not one per pass), counted, and capture goes on.
func TestDirSourceSkipsFIFOOnce(t *testing.T) {
	dir := t.TempDir()
	pngData := testPNG(t)
	if err := syscall.Mkfifo(filepath.Join(dir, "00-pipe.jpg"), 0o644); err != nil {
		t.Fatal(err)
	}
	testWrite(t, dir, "01.png", pngData)
	testWrite(t, dir, "02.png", pngData)
	d, logs := testNew(t, Options{Dir: dir, Loop: true})
	done := make(chan []frame.Frame, 1)
	go func() {
		var frames []frame.Frame
		for i := 0; i < 6; i++ { // three passes
			f, err := d.Capture(context.Background())
			if err != nil {
				t.Error(err)
				break
			}
			frames = append(frames, f)
		}
		done <- frames
	}()
	var frames []frame.Frame
	select {
	case frames = <-done:
	case <-time.After(30 * time.Second): // a hang, not a speed limit
		t.Fatal("Capture blocks on a FIFO in the folder")
	}
	if len(frames) != 6 {
		t.Fatalf("%d frames, want 6", len(frames))
	}
	if n := strings.Count(logs.String(), "not a regular file"); n != 1 {
		t.Errorf("%d warnings about the FIFO over three passes, want 1:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), `file=00-pipe.jpg kind="named pipe (FIFO)" non_regular_skipped=1`) {
		t.Errorf("the warning does not name the file, kind and count:\n%s", logs)
	}
	if n := d.SkippedNonRegular(); n != 1 {
		t.Errorf("SkippedNonRegular = %d, want 1", n)
	}
}
