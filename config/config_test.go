package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "framepush.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultsAreValid(t *testing.T) {
	l, err := Load("", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := l.Config
	if c.Source.Type != "testpattern" || c.Trigger.Type != "continuous" || c.Trigger.FPS != 1 ||
		c.Server.Addresses[0] != "127.0.0.1:7400" {
		t.Fatalf("defaults are not test pattern, 1 fps, local receiver: %+v", c)
	}
}

func TestExampleMatchesDefaults(t *testing.T) {
	l, err := Load(write(t, Example), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	if !reflect.DeepEqual(l.Config, d) {
		t.Fatalf("example.yaml drifted from Default():\nexample: %+v\ndefault: %+v", l.Config, d)
	}
}

func TestFileEnvFlagPrecedence(t *testing.T) {
	p := write(t, "trigger:\n  type: interval\n  interval: 30s\nserver:\n  addresses: [10.1.1.1:7400]\nqueue:\n  memory_bytes: 8MiB\n")
	// FRAMEPUSH_CONFIG and the scripts' variables are not settings.
	l, err := Load(p, []string{"FRAMEPUSH_TRIGGER_INTERVAL=45s", "PATH=/bin", "FRAMEPUSH_SERVER_ADDRESSES=a:1, b:2",
		"FRAMEPUSH_CONFIG=/etc/x.yaml", "FRAMEPUSH_SKIP_VM=1", "FRAMEPUSH_VM_WORK=/tmp/x"},
		[]string{"trigger.interval=1m", "source.controls.brightness=12"})
	if err != nil {
		t.Fatal(err)
	}
	c := l.Config
	if c.Trigger.Interval != time.Minute || c.Trigger.Type != "interval" {
		t.Fatalf("flag did not win: %v", c.Trigger.Interval)
	}
	if !reflect.DeepEqual(c.Server.Addresses, []string{"a:1", "b:2"}) {
		t.Fatalf("env list: %v", c.Server.Addresses)
	}
	if c.Queue.MemoryBytes != 8*MiB || c.Source.Controls["brightness"] != 12 {
		t.Fatalf("file size or control not applied: %v %v", c.Queue.MemoryBytes, c.Source.Controls)
	}
	if o := l.Origin("trigger.type"); o != p+":2" {
		t.Fatalf("origin of trigger.type = %q", o)
	}
	if o := l.Origin("server.addresses"); o != "$FRAMEPUSH_SERVER_ADDRESSES" {
		t.Fatalf("origin of server.addresses = %q", o)
	}
}

func TestErrorsAreClear(t *testing.T) {
	tests := []struct {
		name, yaml string
		env, sets  []string
		want       []string
	}{
		{name: "unknown key", yaml: "source:\n  typ: v4l2\n", want: []string{":2: unknown key \"typ\" in source", "known: buffers, command"}},
		{name: "wrong type", yaml: "source:\n  width: wide\n", want: []string{":2: cannot unmarshal", "wide"}},
		{name: "bad duration", yaml: "trigger:\n  interval: soon\n", want: []string{":2:", "a duration like"}},
		{name: "bad enum", yaml: "trigger:\n  type: gpio\n  gpio:\n    line: GPIO17\n    edge: up\n", want: []string{":5: trigger.gpio.edge: \"up\" is not allowed (want rising, falling or both)"}},
		{name: "gpio without pin", yaml: "trigger:\n  type: gpio\n", want: []string{":2: trigger.gpio: trigger.type is gpio but no pin is set"}},
		{name: "chip without offset", yaml: "trigger:\n  type: gpio\n  gpio: {chip: pinctrl-rp1}\n", want: []string{"trigger.gpio.offset is not"}},
		{name: "pin without gpio type", yaml: "trigger:\n  gpio:\n    line: GPIO17\n", want: []string{":3: trigger.gpio.line: a GPIO pin is set but trigger.type is continuous"}},
		{name: "range", yaml: "source:\n  jpeg_quality: 101\n", want: []string{":2: source.jpeg_quality: \"101\" is not allowed (want 1 to 100)"}},
		{name: "address", yaml: "server:\n  addresses: [myserver]\n", want: []string{"\"myserver\" is not HOST:PORT"}},
		{name: "always spool needs dir", yaml: "queue:\n  always_spool: true\n", want: []string{"queue.always_spool: needs queue.spool_dir"}},
		{name: "size", yaml: "queue:\n  memory_bytes: lots\n", want: []string{":2:", "\"lots\" is not a size"}},
		{name: "not a mapping", yaml: "- a\n- b\n", want: []string{":1: the file must be a mapping"}},
		{name: "section not a mapping", yaml: "source: v4l2\n", want: []string{":1: source must be a mapping"}},
		{name: "several at once", yaml: "source:\n  type: webcam\nlog:\n  level: loud\n", want: []string{"source.type: \"webcam\" is not allowed (want testpattern, v4l2, command or dir)", "log.level: \"loud\""}},
		{name: "env unknown", env: []string{"FRAMEPUSH_NOPE=1"}, want: []string{"$FRAMEPUSH_NOPE: no such setting"}},
		{name: "env bad value", env: []string{"FRAMEPUSH_TRIGGER_FPS=fast"}, want: []string{"$FRAMEPUSH_TRIGGER_FPS", "\"fast\" is not a valid value"}},
		{name: "set unknown", sets: []string{"trigger.speed=3"}, want: []string{"--set trigger.speed", "known in this section:"}},
		{name: "set malformed", sets: []string{"trigger.fps"}, want: []string{"want key.path=value"}},
		{name: "set origin", sets: []string{"trigger.fps=0"}, want: []string{"--set trigger.fps: trigger.fps: \"0\" is not allowed"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := ""
			if tc.yaml != "" {
				p = write(t, tc.yaml)
			}
			_, err := Load(p, tc.env, tc.sets)
			if err == nil {
				t.Fatalf("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("got %v", err)
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{"65536": 65536, "64KiB": 64 * KiB, "1.5MiB": 3 * MiB / 2, "10MB": 10e6, "2G": 2 * GiB} {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("%s: %v %v", in, got, err)
		}
	}
	for _, in := range []string{"", "-1", "abc", "1PiB"} {
		if _, err := ParseByteSize(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
	if (64*MiB).String() != "64MiB" || ByteSize(1000).String() != "1000" {
		t.Error("String")
	}
}

func TestEffectiveYAMLRoundTrips(t *testing.T) {
	l, err := Load("", nil, []string{"trigger.type=gpio", "trigger.gpio.chip=9030000.pl061", "trigger.gpio.offset=3"})
	if err != nil {
		t.Fatal(err)
	}
	l2, err := Load(write(t, l.YAML()), nil, nil)
	if err != nil {
		t.Fatalf("rendered config does not load back: %v\n%s", err, l.YAML())
	}
	if !reflect.DeepEqual(l.Config, l2.Config) {
		t.Fatalf("round trip changed the config")
	}
	if len(Paths()) < 50 || EnvName("trigger.gpio.line") != "FRAMEPUSH_TRIGGER_GPIO_LINE" {
		t.Fatalf("paths: %d", len(Paths()))
	}
}
