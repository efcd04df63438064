package view

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"time"

	"framepush/view/mjpeg"
)

//go:embed assets
var assets embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"ago":     ago,
	"bytes":   humanBytes,
	"stamp":   func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000Z") },
	"isodate": func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) },
	"lat": func(f *float64) string {
		if f == nil {
			return "–"
		}
		return fmt.Sprintf("%.0f ms", *f*1000)
	},
}).ParseFS(assets, "assets/*.html"))

// HandlerOptions configures the HTTP side.
type HandlerOptions struct {
	// Title heads the page (default "framerecv").
	Title string
	// MaxViewers bounds concurrent MJPEG streams over all devices
	// (default 32); one more is answered 503.
	MaxViewers int
	// Refresh is how often the page polls for new frames (default 2 s).
	Refresh time.Duration
}

// Handler serves the page, the per-device pages and images, the streams
// and /api/devices. ctx ending closes the streams (for a prompt shutdown:
// http.Server.Shutdown does not wait for them otherwise).
func (d *Devices) Handler(ctx context.Context, o HandlerOptions) http.Handler {
	if o.Title == "" {
		o.Title = "framerecv"
	}
	if o.MaxViewers <= 0 {
		o.MaxViewers = 32
	}
	if o.Refresh <= 0 {
		o.Refresh = 2 * time.Second
	}
	d.streams.MaxViewers = o.MaxViewers
	h := &handler{d: d, o: o, ctx: ctx, streams: &d.streams,
		etag: strconv.FormatInt(d.started.UnixNano(), 36) + "-"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", h.index)
	mux.HandleFunc("GET /assets/view.js", h.script)
	mux.HandleFunc("GET /api/devices", h.apiDevices)
	mux.HandleFunc("GET /api/devices/{name}", h.apiDevice)
	mux.HandleFunc("GET /devices/{name}/{$}", h.devicePage)
	mux.HandleFunc("GET /devices/{name}/latest.jpg", h.latest)
	mux.HandleFunc("GET /devices/{name}/stream.mjpg", h.stream)
	mux.HandleFunc("GET /devices/{name}/frames/{n}", h.frame)
	return mux
}

// Streams is the number of MJPEG streams being served, and the images
// written to them so far.
func (d *Devices) Streams() (viewers int64, parts uint64) {
	return d.streams.Viewers(), d.streams.Parts()
}

type handler struct {
	d       *Devices
	o       HandlerOptions
	ctx     context.Context
	streams *mjpeg.Streamer
	etag    string
}

type pageData struct {
	Title      string
	Now        time.Time
	Devices    []DeviceState
	Device     *DeviceState
	StaleAfter time.Duration
	RefreshMS  int64
}

func (h *handler) render(w http.ResponseWriter, name string, data pageData) {
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, name, data); err != nil {
		http.Error(w, "cannot render the page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(b.Bytes())
}

func (h *handler) data() pageData {
	return pageData{Title: h.o.Title, Now: h.d.opt.Now(), StaleAfter: h.d.opt.StaleAfter, RefreshMS: h.o.Refresh.Milliseconds()}
}

func (h *handler) index(w http.ResponseWriter, r *http.Request) {
	p := h.data()
	p.Devices = h.d.States()
	h.render(w, "index.html", p)
}

func (h *handler) devicePage(w http.ResponseWriter, r *http.Request) {
	s, ok := h.d.State(r.PathValue("name"))
	if !ok {
		http.Error(w, fmt.Sprintf("no device %q has sent a frame since this receiver started", r.PathValue("name")), http.StatusNotFound)
		return
	}
	p := h.data()
	p.Device = &s
	h.render(w, "device.html", p)
}

func (h *handler) script(w http.ResponseWriter, r *http.Request) {
	b, _ := assets.ReadFile("assets/view.js")
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Write(b)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func (h *handler) apiDevices(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, struct {
		Now               time.Time     `json:"now"`
		StaleAfterSeconds float64       `json:"stale_after_seconds"`
		Devices           []DeviceState `json:"devices"`
	}{h.d.opt.Now(), h.d.opt.StaleAfter.Seconds(), h.d.States()})
}

func (h *handler) apiDevice(w http.ResponseWriter, r *http.Request) {
	s, ok := h.d.State(r.PathValue("name"))
	if !ok {
		http.Error(w, fmt.Sprintf("no device %q", r.PathValue("name")), http.StatusNotFound)
		return
	}
	writeJSON(w, s)
}

func (h *handler) latestOf(w http.ResponseWriter, r *http.Request) *mjpeg.Latest {
	l := h.d.latest(r.PathValue("name"))
	if l == nil {
		http.Error(w, fmt.Sprintf("no device %q has sent a frame since this receiver started", r.PathValue("name")), http.StatusNotFound)
	}
	return l
}

func (h *handler) latest(w http.ResponseWriter, r *http.Request) {
	if l := h.latestOf(w, r); l != nil {
		mjpeg.ServeStill(w, r, l, h.etag+pathEscape(r.PathValue("name"))+"-")
	}
}

func (h *handler) stream(w http.ResponseWriter, r *http.Request) {
	if l := h.latestOf(w, r); l != nil {
		h.streams.Serve(h.ctx, w, r, l)
	}
}

func (h *handler) frame(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.ParseUint(r.PathValue("n"), 10, 64)
	if err != nil {
		http.Error(w, "frame number: "+err.Error(), http.StatusBadRequest)
		return
	}
	e, data, code := h.d.frame(r.PathValue("name"), n)
	if code != http.StatusOK {
		msg := "unknown device"
		if code == http.StatusGone {
			msg = "that frame's image is no longer held in memory; it is stored"
			if e != nil {
				msg += " at " + e.Location
			}
		}
		http.Error(w, msg, code)
		return
	}
	w.Header().Set("Content-Type", e.Type)
	w.Header().Set("ETag", `"`+h.etag+pathEscape(r.PathValue("name"))+"-f"+strconv.FormatUint(n, 10)+`"`)
	w.Header().Set("Cache-Control", "max-age=3600, immutable")
	http.ServeContent(w, r, "", e.Stored, bytes.NewReader(data))
}

func ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < 0:
		return "now"
	case d < time.Minute:
		return fmt.Sprintf("%.0f s ago", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%.0f min ago", d.Minutes())
	case d < 48*time.Hour:
		return fmt.Sprintf("%.1f h ago", d.Hours())
	}
	return fmt.Sprintf("%.0f days ago", d.Hours()/24)
}

func humanBytes(n any) string {
	var v float64
	switch x := n.(type) {
	case int64:
		v = float64(x)
	case uint64:
		v = float64(x)
	}
	switch {
	case v >= 1<<30:
		return fmt.Sprintf("%.1f GiB", v/(1<<30))
	case v >= 1<<20:
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	case v >= 1<<10:
		return fmt.Sprintf("%.1f KiB", v/(1<<10))
	}
	return fmt.Sprintf("%.0f B", v)
}
