package main

// The viewing side of framerecv: the web page, still and MJPEG URLs,
// /api/devices, their access control, and MQTT. Flags, checks and wiring
// are kept here, apart from the receiver's own.

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"framepush/internal/version"
	"framepush/notify"
	"framepush/notify/mqtt"
	"framepush/receiver"
	"framepush/view"
)

type viewSettings struct {
	httpUser, httpPasswordFile, httpTokenFile string
	httpTLSCert, httpTLSKey                   string
	httpInsecure                              bool
	staleAfter                                time.Duration
	keepFrame                                 int64
	maxDevices, maxViewers                    int

	mqttURL, mqttUser, mqttPasswordFile string
	mqttCA, mqttCert, mqttKey, mqttID   string
	mqttPrefix, mqttDiscoveryPrefix     string
	mqttDiscovery                       bool
	mqttMaxImage                        int64
}

func addViewFlags(fs *flag.FlagSet, v *viewSettings) {
	v.keepFrame = 8 << 20
	v.mqttMaxImage = mqtt.DefaultMaxImage
	fs.StringVar(&v.httpUser, "http-user", "", "require HTTP basic auth with this `USER` on --http (with --http-password-file)")
	fs.StringVar(&v.httpPasswordFile, "http-password-file", "", "`FILE` holding the basic-auth password (first line)")
	fs.StringVar(&v.httpTokenFile, "http-token-file", "", "`FILE` holding a bearer token that --http also accepts (Authorization: Bearer ...)")
	fs.StringVar(&v.httpTLSCert, "http-tls-cert", "", "serve --http over HTTPS with this PEM certificate `FILE` (needs --http-tls-key)")
	fs.StringVar(&v.httpTLSKey, "http-tls-key", "", "PEM private key `FILE` for --http-tls-cert")
	fs.BoolVar(&v.httpInsecure, "http-insecure", false, "allow --http on a non-loopback address without credentials (anyone who can reach it sees every frame)")
	fs.DurationVar(&v.staleAfter, "stale-after", view.DefaultStaleAfter, "mark a device stale (page, MQTT state) after this long without a frame")
	fs.Var(sizeFlag{&v.keepFrame}, "view-max-frame", "newest frames up to this many `BYTES` are kept in memory for the page, latest.jpg, stream.mjpg and MQTT images")
	fs.IntVar(&v.maxDevices, "view-max-devices", view.DefaultMaxDevices, "devices tracked in memory; a new one beyond evicts the one silent the longest")
	fs.IntVar(&v.maxViewers, "view-max-streams", 32, "concurrent stream.mjpg viewers; more are answered 503")
	fs.StringVar(&v.mqttURL, "mqtt", "", "publish events, images and Home Assistant discovery to this broker `URL`: tcp://HOST:1883, ssl://HOST:8883 (default off)")
	fs.StringVar(&v.mqttUser, "mqtt-user", "", "MQTT `USER`")
	fs.StringVar(&v.mqttPasswordFile, "mqtt-password-file", "", "`FILE` holding the MQTT password (first line)")
	fs.StringVar(&v.mqttCA, "mqtt-ca", "", "PEM `FILE` of CAs to verify an ssl:// broker (default: the system's)")
	fs.StringVar(&v.mqttCert, "mqtt-cert", "", "PEM client certificate `FILE` for an ssl:// broker (needs --mqtt-key)")
	fs.StringVar(&v.mqttKey, "mqtt-key", "", "PEM private key `FILE` for --mqtt-cert")
	fs.StringVar(&v.mqttID, "mqtt-client-id", "", "MQTT client `ID` (default framerecv-<host name>)")
	fs.StringVar(&v.mqttPrefix, "mqtt-prefix", mqtt.DefaultPrefix, "topic `PREFIX`: PREFIX/<device>/event, /image, /state")
	fs.BoolVar(&v.mqttDiscovery, "mqtt-discovery", true, "publish Home Assistant MQTT discovery (a camera, a last-frame sensor and an online sensor per device)")
	fs.StringVar(&v.mqttDiscoveryPrefix, "mqtt-discovery-prefix", mqtt.DefaultDiscoveryPrefix, "Home Assistant discovery `PREFIX`")
	fs.Var(sizeFlag{&v.mqttMaxImage}, "mqtt-max-image", "largest image published on PREFIX/<device>/image, in `BYTES`")
}

// check validates the flags that need no file access.
func (v *viewSettings) check(httpAddr string) error {
	switch {
	case v.staleAfter <= 0:
		return errors.New("--stale-after must be a positive duration (e.g. 2m)")
	case v.keepFrame < 0:
		return errors.New("--view-max-frame must not be negative (0 keeps no image)")
	case v.maxDevices <= 0 || v.maxViewers <= 0:
		return errors.New("--view-max-devices and --view-max-streams must be at least 1")
	case (v.httpUser == "") != (v.httpPasswordFile == ""):
		return errors.New("--http-user and --http-password-file go together")
	case (v.httpTLSCert == "") != (v.httpTLSKey == ""):
		return errors.New("--http-tls-cert and --http-tls-key go together")
	case (v.mqttCert == "") != (v.mqttKey == ""):
		return errors.New("--mqtt-cert and --mqtt-key go together")
	case v.mqttURL == "" && (v.mqttUser != "" || v.mqttPasswordFile != "" || v.mqttCA != "" || v.mqttCert != ""):
		return errors.New("--mqtt-user, --mqtt-password-file, --mqtt-ca and --mqtt-cert need --mqtt URL")
	case httpAddr == "" && (v.httpUser != "" || v.httpTokenFile != "" || v.httpTLSCert != ""):
		return errors.New("--http-user, --http-token-file and --http-tls-cert need --http HOST:PORT")
	}
	if httpAddr != "" && !isLoopback(httpAddr) && v.httpUser == "" && v.httpTokenFile == "" && !v.httpInsecure {
		return fmt.Errorf("--http %s is reachable beyond this machine, and would show every frame to anyone who can reach it: "+
			"set --http-user with --http-password-file, or --http-token-file (and --http-tls-cert/--http-tls-key), "+
			"bind to 127.0.0.1, or pass --http-insecure to allow it on purpose", httpAddr)
	}
	return nil
}

// isLoopback reports whether addr listens only on a loopback interface.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// secret reads the first line of a file holding a password or token.
func secret(flagName, path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("cannot read --%s: %w", flagName, err)
	}
	s, _, _ := strings.Cut(string(b), "\n")
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Errorf("--%s %s is empty", flagName, path)
	}
	return s, nil
}

// viewer is the running viewing side.
type viewer struct {
	devices *view.Devices
	mqtt    *mqtt.Publisher
	notify  notify.Notifier
	extra   *metrics.Set
	cancel  context.CancelFunc
	ctx     context.Context
}

// startViewer makes the per-device state (when --http is on) and the MQTT
// publisher (with --mqtt).
func (v *viewSettings) start(httpOn bool, log *slog.Logger) (*viewer, error) {
	w := &viewer{extra: metrics.NewSet()}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	if httpOn {
		w.devices = view.New(view.Options{StaleAfter: v.staleAfter, MaxDevices: v.maxDevices,
			OnEvict: func(name string) {
				log.Warn("device evicted from the page's state (--view-max-devices)", "device", name)
			}})
		w.extra.NewGauge("framerecv_view_streams", func() float64 { n, _ := w.devices.Streams(); return float64(n) })
		w.extra.NewGauge("framerecv_view_devices", func() float64 { return float64(len(w.devices.States())) })
	}
	if v.mqttURL != "" {
		pw, err := secret("mqtt-password-file", v.mqttPasswordFile)
		if err != nil {
			return nil, err
		}
		var tlsCfg *tls.Config
		if v.mqttCA != "" || v.mqttCert != "" || strings.HasPrefix(v.mqttURL, "ssl:") || strings.HasPrefix(v.mqttURL, "tls:") || strings.HasPrefix(v.mqttURL, "mqtts:") {
			tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12}
			if v.mqttCA != "" {
				pool, err := loadCAFlag("mqtt-ca", v.mqttCA)
				if err != nil {
					return nil, err
				}
				tlsCfg.RootCAs = pool
			}
			if v.mqttCert != "" {
				cert, err := tls.LoadX509KeyPair(v.mqttCert, v.mqttKey)
				if err != nil {
					return nil, fmt.Errorf("cannot load --mqtt-cert / --mqtt-key: %w", err)
				}
				tlsCfg.Certificates = []tls.Certificate{cert}
			}
		}
		id := v.mqttID
		if id == "" {
			host, _ := os.Hostname()
			id = "framerecv-" + host
		}
		pub, err := mqtt.New(mqtt.Options{Broker: v.mqttURL, ClientID: id, Username: v.mqttUser, Password: pw, TLS: tlsCfg,
			Prefix: v.mqttPrefix, Discovery: v.mqttDiscovery, DiscoveryPrefix: v.mqttDiscoveryPrefix,
			StaleAfter: v.staleAfter, MaxImage: v.mqttMaxImage, Version: version.String("framerecv"),
			Logger: log, Metrics: w.extra})
		if err != nil {
			return nil, err
		}
		w.mqtt, w.notify = pub, pub
		log.Info("publishing to MQTT", "broker", v.mqttURL, "prefix", v.mqttPrefix, "discovery", v.mqttDiscovery)
	}
	return w, nil
}

// keepData is receiver.Options.KeepData: payloads are kept only when
// something shows them.
func (v *viewSettings) keepData(w *viewer) int64 {
	if w.devices == nil && w.mqtt == nil {
		return 0
	}
	return v.keepFrame
}

// onFrame is receiver.Options.OnFrame: O(1), never blocking.
func (w *viewer) onFrame() func(receiver.Stored) {
	if w.devices == nil && w.notify == nil {
		return nil
	}
	return func(st receiver.Stored) {
		if w.devices != nil {
			w.devices.Record(st)
		}
		if w.notify != nil {
			w.notify.Notify(notify.FromStored(st))
		}
	}
}

// handler serves /healthz and /readyz (open, for load balancers), /metrics (the receiver's and ours) and
// the page, behind the configured access control.
func (w *viewer) handler(v *viewSettings, base http.Handler) (http.Handler, error) {
	pw, err := secret("http-password-file", v.httpPasswordFile)
	if err != nil {
		return nil, err
	}
	token, err := secret("http-token-file", v.httpTokenFile)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/healthz", base)
	mux.Handle("/readyz", base)
	mux.HandleFunc("/metrics", func(rw http.ResponseWriter, r *http.Request) {
		base.ServeHTTP(rw, r)
		w.extra.WritePrometheus(rw)
	})
	mux.Handle("/", w.devices.Handler(w.ctx, view.HandlerOptions{MaxViewers: v.maxViewers}))
	return view.Access{User: v.httpUser, Password: pw, Token: token, Open: []string{"/healthz", "/readyz"}}.Wrap(mux), nil
}

// httpTLS loads --http-tls-cert and --http-tls-key, nil when not set.
func (v *viewSettings) httpTLS() (*tls.Config, error) {
	if v.httpTLSCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(v.httpTLSCert, v.httpTLSKey)
	if err != nil {
		return nil, fmt.Errorf("cannot load --http-tls-cert %s / --http-tls-key %s: %w", v.httpTLSCert, v.httpTLSKey, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// serve runs hs on hl, over TLS when hs.TLSConfig is set.
func serve(hs *http.Server, hl net.Listener) error {
	if hs.TLSConfig != nil {
		return hs.ServeTLS(hl, "", "")
	}
	return hs.Serve(hl)
}

// scheme is the page's URL scheme.
func (v *viewSettings) scheme() string {
	if v.httpTLSCert != "" {
		return "https"
	}
	return "http"
}

// stopStreams ends the MJPEG streams, so that the HTTP server's Shutdown
// need not wait for them.
func (w *viewer) stopStreams() { w.cancel() }

// close stops the MQTT publisher (after the receiver stopped).
func (w *viewer) close() {
	if w.mqtt != nil {
		w.mqtt.Close()
	}
}
