package frame

import "testing"

// The strings are what spool headers, logs and the trigger.type config key
// carry: a renamed constant must not change them.
func TestKindStrings(t *testing.T) {
	for k, want := range map[TriggerKind]string{
		Continuous: "continuous", Interval: "interval", GPIO: "gpio", Signal: "signal",
		PreTrigger: "pre-trigger", Send: "send",
	} {
		if string(k) != want {
			t.Errorf("trigger kind %q, want %q", k, want)
		}
	}
	for f, want := range map[Format]string{JPEG: "jpeg", PNG: "png", Bin: "bin"} {
		if string(f) != want {
			t.Errorf("format %q, want %q", f, want)
		}
	}
}

func TestEventKinds(t *testing.T) {
	for k, want := range map[TriggerKind]bool{
		GPIO: true, Signal: true, PreTrigger: true,
		Continuous: false, Interval: false, Send: false, "": false, "unknown": false,
	} {
		if got := k.Event(); got != want {
			t.Errorf("%q.Event() = %v, want %v", k, got, want)
		}
	}
}
