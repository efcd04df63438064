package config

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// Fractional numbers for whole-number settings used to be cut silently by
// yaml.v3 (1.5 -> 1, 640.9 -> 640).
func TestFractionalNumbersAreTypeErrors(t *testing.T) {
	p := write(t, "source:\n  width: 640.9\n  controls:\n    brightness: 2.5\nqueue:\n  memory_frames: 1.5\n  memory_bytes: 1048576.5\n")
	_, err := Load(p, nil, nil)
	if err == nil {
		t.Fatal("fractional numbers accepted")
	}
	for _, want := range []string{
		p + ":2: source.width: 640.9 is not a whole number",
		p + ":4: source.controls.brightness: 2.5 is not a whole number",
		p + ":6: queue.memory_frames: 1.5 is not a whole number",
		p + ":7: queue.memory_bytes: 1048576.5 is not a whole number", // a byte count without a unit
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	_, err = Load("", []string{"FRAMEPUSH_SOURCE_HEIGHT=480.5"}, []string{"queue.spool_max_frames=10.25", "source.controls.contrast=0.5"})
	for _, want := range []string{
		"$FRAMEPUSH_SOURCE_HEIGHT: 480.5 is not a whole number",
		"--set queue.spool_max_frames: 10.25 is not a whole number",
		"--set source.controls.contrast: 0.5 is not a whole number",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	// Whole numbers, also written as floats, and float settings stay fine.
	l, err := Load(write(t, "source:\n  width: 320.0\n  height: 240\ntrigger:\n  fps: 2.5\nqueue:\n  spool_max_bytes: 1.5GiB\n"), nil, []string{"queue.memory_frames=4"})
	if err != nil {
		t.Fatal(err)
	}
	if l.Source.Width != 320 || l.Source.Height != 240 || l.Trigger.FPS != 2.5 || l.Queue.MemoryFrames != 4 || l.Queue.SpoolMaxBytes != 1536<<20 {
		t.Fatalf("values: %+v %+v %+v", l.Source, l.Trigger, l.Queue)
	}
}

// A 50 MB file used to be read whole (304 MB peak RSS in config check).
func TestFileSizeCap(t *testing.T) {
	big := "# " + strings.Repeat("x", MaxFileBytes) + "\n"
	_, err := Load(write(t, big), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "larger than the 1048576-byte (1 MiB) limit") {
		t.Fatalf("err = %v, want the size limit", err)
	}
	// Just under the cap is read.
	ok := "# " + strings.Repeat("x", MaxFileBytes-100) + "\nname: cam\n"
	if l, err := Load(write(t, ok), nil, nil); err != nil || l.Name != "cam" {
		t.Fatalf("file under the cap: %v", err)
	}
	// A pipe (no size to stat) is cut at the cap, not read to its end.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	go func() {
		defer w.Close()
		chunk := []byte(strings.Repeat("#", 64<<10) + "\n")
		for i := 0; i < 800; i++ { // 50 MiB unless the reader stops
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}()
	_, err = Load(fmt.Sprintf("/dev/fd/%d", r.Fd()), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "larger than the 1048576-byte (1 MiB) limit") {
		t.Fatalf("pipe: err = %v, want the size limit", err)
	}
	if _, err := Load(t.TempDir(), nil, nil); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Fatalf("directory: err = %v", err)
	}
}

// Each list item has its own line; a variable that replaces the list
// takes the blame itself.
func TestAddressErrorsPointAtTheItem(t *testing.T) {
	p := write(t, "server:\n  addresses:\n    - 10.0.0.1:7400\n    - :7400\n")
	_, err := Load(p, nil, nil)
	want := p + `:4: server.addresses: ":7400" has no host (want HOST:PORT, e.g. 192.168.1.10:7400)`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want %q", err, want)
	}
	_, err = Load(p, []string{"FRAMEPUSH_SERVER_ADDRESSES=10.0.0.1:7400,:7401"}, nil)
	if err == nil || !strings.Contains(err.Error(), `config: $FRAMEPUSH_SERVER_ADDRESSES: server.addresses: ":7401" has no host`) {
		t.Fatalf("env: err = %v", err)
	}
}
