package agent

import (
	"errors"
	"strings"
	"testing"

	"framepush/config"
	"framepush/internal/logging"
)

// A setting the constructors refuse, given to New without config.Load's
// validation (which refuses these first, with file:line): New reports it as
// ErrConfig, so run exits 2, and says "sender: ..." or "queue: ..." once.
// It used to surface only in Run ("sender: sender: bad options ...", exit 1)
// or as "queue: queue: ...".
func TestNewRefusesBadOptionsAsConfigErrors(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(*config.Config)
		want   string
	}{
		{"address without host", func(c *config.Config) { c.Server.Addresses = []string{":7400"} },
			`sender: bad options: server address ":7400" has no host`},
		{"negative memory frames", func(c *config.Config) { c.Queue.MemoryFrames = -1 },
			"queue: MemoryFrames is -1"},
		{"test pattern too small", func(c *config.Config) { c.Source.Width = 2 },
			"source: capture: test pattern width 2 is out of range"},
		{"CA file missing", func(c *config.Config) { c.Server.TLS.Enabled, c.Server.TLS.CA = true, "/nonexistent/ca.pem" },
			"server.tls: sender: cannot read TLS CA file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig("127.0.0.1:7400")
			c.change(&cfg)
			_, err := New(cfg, Options{Logger: logging.Discard, Notify: func(string) {}})
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, c.want) {
				t.Errorf("err = %q, want it to start with %q", msg, c.want)
			}
			for _, doubled := range []string{"sender: sender:", "queue: queue:"} {
				if strings.Contains(msg, doubled) {
					t.Errorf("doubled prefix %q in %q", doubled, msg)
				}
			}
			if err := CheckConfig(cfg); err == nil || err.Error() != msg {
				t.Errorf("CheckConfig = %v, want New's error", err)
			}
		})
	}
	if err := CheckConfig(testConfig("127.0.0.1:7400")); err != nil {
		t.Fatalf("the test configuration: %v", err)
	}
}
