package bytesize

import (
	"testing"

	"gopkg.in/yaml.v3"
)

func TestParseAndString(t *testing.T) {
	for in, want := range map[string]Size{"65536": 65536, "64KiB": 64 * KiB, "1.5MiB": 3 * MiB / 2, "10MB": 10e6, "2G": 2 * GiB, " 8 MiB ": 8 * MiB} {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "lots", "-1", "1XB", "9999999TiB"} {
		if _, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) accepted", in)
		}
	}
	for b, want := range map[Size]string{64 * MiB: "64MiB", 1000: "1000", 0: "0", 3 * GiB: "3GiB", 1536: "1536", 2 * KiB: "2KiB"} {
		if b.String() != want {
			t.Errorf("%d.String() = %q, want %q", int64(b), b.String(), want)
		}
	}
}

func TestYAML(t *testing.T) {
	var v struct {
		S Size `yaml:"s"`
	}
	if err := yaml.Unmarshal([]byte("s: 512KiB\n"), &v); err != nil || v.S != 512*KiB {
		t.Fatalf("unmarshal: %v, %v", v.S, err)
	}
	out, err := yaml.Marshal(v)
	if err != nil || string(out) != "s: 512KiB\n" {
		t.Fatalf("marshal: %q, %v", out, err)
	}
	if err := yaml.Unmarshal([]byte("s: big\n"), &v); err == nil {
		t.Fatal("a non-size was accepted")
	}
}
