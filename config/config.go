// Package config loads, defaults and validates the agent's configuration.
//
// Precedence, lowest first: built-in defaults, the YAML file, FRAMEPUSH_*
// environment variables, then command-line --set flags. Every error names
// where the bad value came from (file:line, variable or flag) and what is
// allowed, because the person reading it is standing next to a board.
package config

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// DefaultPort is the receiver's default TCP port.
const DefaultPort = 7400

// Config is the whole agent configuration. The yaml tags are the file's
// keys; doc comments are what `framepush config check` and the example
// file explain.
type Config struct {
	Name     string   `yaml:"name"` // device name: extension name= token, log field; default hostname
	Source   Source   `yaml:"source"`
	Trigger  Trigger  `yaml:"trigger"`
	Server   Server   `yaml:"server"`
	Queue    Queue    `yaml:"queue"`
	HTTP     HTTP     `yaml:"http"`
	Log      Log      `yaml:"log"`
	Shutdown Shutdown `yaml:"shutdown"`
}

// Source selects and tunes where frames come from.
type Source struct {
	Type         string           `yaml:"type"`               // testpattern | v4l2 | command | dir
	Device       string           `yaml:"device"`             // v4l2: /dev/video0 or a stable /dev/v4l/by-id/... link
	Format       string           `yaml:"format"`             // v4l2: auto | mjpeg | yuyv
	Width        int              `yaml:"width"`              // pixels
	Height       int              `yaml:"height"`             // pixels
	FPS          float64          `yaml:"fps"`                // v4l2: frame rate asked of the driver
	JPEGQuality  int              `yaml:"jpeg_quality"`       // 1-100, for sources that encode
	Buffers      int              `yaml:"buffers"`            // v4l2: driver buffers, 2-8
	Controls     map[string]int32 `yaml:"controls,omitempty"` // v4l2: camera controls by name
	FrameTimeout time.Duration    `yaml:"frame_timeout"`      // no frame for this long means the camera is gone
	Command      []string         `yaml:"command,omitempty"`  // command: argv of a program writing MJPEG to stdout
	Dir          string           `yaml:"dir"`                // dir: folder of images to replay
	Loop         bool             `yaml:"loop"`               // dir: start over when done
	Reopen       Reopen           `yaml:"reopen"`
}

// Reopen is the schedule for reopening a lost camera or dead child.
type Reopen struct {
	Initial time.Duration `yaml:"initial"`
	Max     time.Duration `yaml:"max"`
	GiveUp  time.Duration `yaml:"give_up"` // exit non-zero (systemd restarts us) after this long without a device
}

// Trigger says when to capture.
type Trigger struct {
	Type     string        `yaml:"type"`     // continuous | interval | gpio | signal
	FPS      float64       `yaml:"fps"`      // continuous: frames per second
	Interval time.Duration `yaml:"interval"` // interval: time between frames (timelapse)
	Signal   bool          `yaml:"signal"`   // also capture on SIGUSR1, whatever the type
	GPIO     GPIO          `yaml:"gpio"`
}

// GPIO is an edge trigger on one input line.
type GPIO struct {
	Line          string        `yaml:"line"`             // a named line, e.g. GPIO17
	Chip          string        `yaml:"chip"`             // or a chip by label (pinctrl-rp1, 9030000.pl061), name or /dev path ...
	Offset        *int          `yaml:"offset,omitempty"` // ... with the line offset on it
	Edge          string        `yaml:"edge"`             // rising | falling | both
	Pull          string        `yaml:"pull"`             // up | down | none
	Debounce      time.Duration `yaml:"debounce"`         // ignore edges this soon after an accepted one
	Frames        int           `yaml:"frames"`           // frames per event
	WhileActive   bool          `yaml:"while_active"`     // keep capturing while the line stays active
	ActiveFPS     float64       `yaml:"active_fps"`       // rate while active
	PreTrigger    int           `yaml:"pre_trigger"`      // frames from before the edge to send with it
	PreTriggerFPS float64       `yaml:"pre_trigger_fps"`  // rate of the pre-trigger ring
}

// Server is where frames go and how.
type Server struct {
	Addresses      []string      `yaml:"addresses"`       // HOST:PORT, tried in order (failover)
	Spread         string        `yaml:"spread"`          // none: start at the first address | name: start at one chosen by a hash of the device name
	Mode           string        `yaml:"mode"`            // auto | persistent | seed
	Terminator     string        `yaml:"terminator"`      // none (seed bytes) | lf | crlf
	Extension      bool          `yaml:"extension"`       // send name/id/ts/checksum tokens on the SIZE line
	Checksum       string        `yaml:"checksum"`        // with extension: sha256 | crc32c | none
	ConnectTimeout time.Duration `yaml:"connect_timeout"` // per connection attempt
	AnswerTimeout  time.Duration `yaml:"answer_timeout"`  // per answer
	MinThroughput  ByteSize      `yaml:"min_throughput"`  // bytes/s below which a data write times out
	Backoff        Backoff       `yaml:"backoff"`
	TLS            TLS           `yaml:"tls"`
	Window         Window        `yaml:"window"`      // pipelining with receivers that grant it
	Connections    int           `yaml:"connections"` // > 1: parallel connections to receivers without the window (order not guaranteed)
}

// Window is the pipelining window (docs/PROTOCOL.md, "Pipelining"): how
// many frames, and how many bytes, may be sent but not yet answered on one
// connection. Negotiated: receivers that do not grant it get stop-and-wait.
type Window struct {
	Frames int      `yaml:"frames"` // 0 or 1: off
	Bytes  ByteSize `yaml:"bytes"`
}

// Backoff is the reconnect schedule (capped exponential, full jitter).
type Backoff struct {
	Initial    time.Duration `yaml:"initial"`
	Max        time.Duration `yaml:"max"`
	Multiplier float64       `yaml:"multiplier"`
}

// TLS configures an encrypted link to the receiver.
type TLS struct {
	Enabled            bool   `yaml:"enabled"`
	CA                 string `yaml:"ca"`          // PEM file of CAs to trust; empty means the system pool
	Cert               string `yaml:"cert"`        // client certificate for mTLS
	Key                string `yaml:"key"`         // its key
	ServerName         string `yaml:"server_name"` // name to verify; default the address host
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// Queue holds frames between capture and delivery.
type Queue struct {
	MemoryFrames   int           `yaml:"memory_frames"`    // frames kept in RAM before spilling
	MemoryBytes    ByteSize      `yaml:"memory_bytes"`     // bytes kept in RAM before spilling
	SpoolDir       string        `yaml:"spool_dir"`        // on-disk spool; empty means memory only
	SpoolMaxBytes  ByteSize      `yaml:"spool_max_bytes"`  // spool size cap
	SpoolMaxFrames int           `yaml:"spool_max_frames"` // spool file count cap
	MaxAge         time.Duration `yaml:"max_age"`          // drop frames older than this; 0 keeps them forever
	Drop           string        `yaml:"drop"`             // oldest | newest: which frame goes when full
	KeepTriggered  bool          `yaml:"keep_triggered"`   // drop untriggered frames before GPIO/signal ones
	AlwaysSpool    bool          `yaml:"always_spool"`     // write every frame to disk first (survives power loss; wears SD cards)
	Fsync          bool          `yaml:"fsync"`            // fsync spool files
	// MaxAttempts: refusals after the payload before a frame goes to the
	// dead-letter folder (<spool_dir>/dead); 0 retries forever.
	MaxAttempts int `yaml:"max_attempts"`
}

// HTTP is the health and metrics listener.
type HTTP struct {
	Listen string `yaml:"listen"` // HOST:PORT for /healthz and /metrics; empty turns it off
	// HealthyWithin: /healthz fails when no frame was captured and
	// delivered for this long.
	HealthyWithin time.Duration `yaml:"healthy_within"`
}

// Log is the log output.
type Log struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // text | json
}

// Shutdown bounds an orderly stop.
type Shutdown struct {
	Timeout time.Duration `yaml:"timeout"` // time to finish or spool the in-flight frame on SIGTERM
}

// Default returns the configuration used when no file is given: the
// built-in test pattern at 1 frame/s to a receiver on this machine.
func Default() Config {
	name, _ := os.Hostname()
	name = sanitizeName(name)
	return Config{
		Name: name,
		Source: Source{
			Type: "testpattern", Device: "/dev/video0", Format: "auto",
			Width: 640, Height: 480, FPS: 15, JPEGQuality: 80, Buffers: 4,
			FrameTimeout: 5 * time.Second,
			Reopen:       Reopen{Initial: time.Second, Max: 30 * time.Second, GiveUp: 10 * time.Minute},
		},
		Trigger: Trigger{
			Type: "continuous", FPS: 1, Interval: time.Minute,
			GPIO: GPIO{Edge: "rising", Pull: "none", Debounce: 50 * time.Millisecond, Frames: 1, ActiveFPS: 2, PreTriggerFPS: 2},
		},
		Server: Server{
			Addresses:      []string{fmt.Sprintf("127.0.0.1:%d", DefaultPort)},
			Spread:         "none",
			Mode:           "auto",
			Terminator:     "none",
			Checksum:       "sha256",
			ConnectTimeout: 5 * time.Second,
			AnswerTimeout:  10 * time.Second,
			MinThroughput:  64 * KiB,
			Backoff:        Backoff{Initial: 500 * time.Millisecond, Max: 30 * time.Second, Multiplier: 2},
			Window:         Window{Frames: 64, Bytes: 8 * MiB},
			Connections:    1,
		},
		Queue: Queue{
			MemoryFrames: 16, MemoryBytes: 8 * MiB,
			SpoolMaxBytes: 512 * MiB, SpoolMaxFrames: 10000,
			Drop: "oldest", KeepTriggered: true, Fsync: true, MaxAttempts: 5,
		},
		HTTP:     HTTP{Listen: "127.0.0.1:7401", HealthyWithin: 2 * time.Minute},
		Log:      Log{Level: "info", Format: "text"},
		Shutdown: Shutdown{Timeout: 10 * time.Second},
	}
}

// sanitizeName makes a host name usable as a wire token.
func sanitizeName(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
			b.WriteRune(c)
		default:
			b.WriteByte('-')
		}
	}
	if b.Len() == 0 {
		return "framepush"
	}
	out := b.String()
	if len(out) > 64 {
		out = out[:64]
	}
	return out
}
