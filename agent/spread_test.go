package agent

import (
	"log/slog"
	"testing"

	"framepush/config"
)

// server.spread: name hands the device name to the sender as its spread
// key; the default (none) keeps the configured order.
func TestSenderOptionsSpread(t *testing.T) {
	c := config.Default().Server
	c.Addresses = []string{"10.0.0.1:7400", "10.0.0.2:7400"}
	for spread, want := range map[string]string{"none": "", "name": "cam-17"} {
		c.Spread = spread
		o, err := SenderOptions(c, "cam-17", slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if o.SpreadKey != want {
			t.Errorf("spread %q: SpreadKey %q, want %q", spread, o.SpreadKey, want)
		}
	}
}
