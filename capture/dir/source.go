package dir

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"framepush/capture"
	"framepush/capture/mjpeg"
	"framepush/frame"
	"framepush/internal/logging"
	"framepush/internal/regularfile"
)

// ErrExhausted is returned by a Source that is not looping once every
// file has been replayed.
var ErrExhausted = capture.ErrExhausted

// DefaultMaxFile caps one replayed file when Options says
// nothing.
const DefaultMaxFile = 32 << 20

// Options configures a Source.
type Options struct {
	Dir         string       // folder of .jpg, .jpeg and .png files
	Loop        bool         // start over (re-reading the folder) after the last file
	MaxFileSize int64        // larger files are skipped; 0 means DefaultMaxFile
	Logger      *slog.Logger // skipped files are logged here; nil discards
	// Now returns the capture time; nil means time.Now. Tests set it.
	Now func() time.Time
}

// Source replays the image files of a folder in name order (byte-wise,
// so number them with leading zeros). Only names ending in .jpg, .jpeg or
// .png (any case) are candidates; names starting with "." (editor temp
// files, macOS "._" metadata) are ignored. The format is taken from the
// file's magic bytes, not its name. A file that vanished, cannot be read,
// is empty, too large, not a JPEG or PNG, or visibly incomplete is skipped
// and logged. Only regular files are opened (symbolic links to them are
// fine): a FIFO, device or socket named like an image is skipped with one
// warning per file, not per pass, and counted (SkippedNonRegular), since
// opening a FIFO would block capture for good. Files are read when their
// turn comes, and a looping source re-reads the folder at the start of
// every pass, so images can be added or removed while it runs.
type Source struct {
	opts   Options
	log    *slog.Logger
	source string
	names  []string
	next   int  // index into names of the next file to try
	passOK int  // frames delivered in the current pass
	stale  bool // the last pass yielded nothing and was reported
	seq    uint64
	closed bool

	notRegular map[string]bool // names skipped as FIFOs, devices ...: warned about once
}

// New lists opts.Dir and fails if it cannot be read or holds no
// candidate image files.
func New(opts Options) (*Source, error) {
	if opts.Dir == "" {
		return nil, errors.New("capture: directory source: no directory given (set source.dir)")
	}
	if opts.MaxFileSize < 0 {
		return nil, fmt.Errorf("capture: directory source: max file size %d is negative", opts.MaxFileSize)
	}
	if opts.MaxFileSize == 0 {
		opts.MaxFileSize = DefaultMaxFile
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	d := &Source{opts: opts, log: opts.Logger, source: "dir:" + opts.Dir, notRegular: map[string]bool{}}
	if d.log == nil {
		d.log = logging.Discard
	}
	if err := d.list(); err != nil {
		return nil, err
	}
	if len(d.names) == 0 {
		return nil, fmt.Errorf("capture: directory source: no .jpg, .jpeg or .png files in %s", opts.Dir)
	}
	return d, nil
}

// list reads the folder's candidate names, sorted, and restarts the pass.
func (d *Source) list() error {
	entries, err := os.ReadDir(d.opts.Dir) // sorted by name
	if err != nil {
		return fmt.Errorf("capture: directory source: reading %s: %w", d.opts.Dir, err)
	}
	d.names = d.names[:0]
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || e.IsDir() {
			continue
		}
		switch strings.ToLower(filepath.Ext(name)) {
		case ".jpg", ".jpeg", ".png":
			d.names = append(d.names, name)
		}
	}
	d.next, d.passOK, d.stale = 0, 0, false
	return nil
}

// Capture returns the next readable image. When the files run out it
// returns ErrExhausted, or, when looping, re-reads the folder and starts
// over. A looping pass that yields no image at all ends in an error
// wrapping capture.ErrDeviceGone, so the caller backs off instead of spinning.
func (d *Source) Capture(ctx context.Context) (frame.Frame, error) {
	if d.closed {
		return frame.Frame{}, fmt.Errorf("capture: %s: capture after close", d.source)
	}
	for {
		if err := ctx.Err(); err != nil {
			return frame.Frame{}, err
		}
		if d.next < len(d.names) {
			name := d.names[d.next]
			d.next++
			data, format, err := d.load(name)
			var nr *regularfile.NotRegularError
			if errors.As(err, &nr) {
				// Every pass meets it again: one warning per file, not per pass.
				if !d.notRegular[name] {
					d.notRegular[name] = true
					d.log.Warn("skipping a file that is not a regular file (logged once per file)", "source", d.source,
						"file", name, "kind", regularfile.Kind(nr.Mode), "non_regular_skipped", len(d.notRegular))
				}
				continue
			}
			if err != nil {
				d.log.Warn("skipping image file", "source", d.source, "file", name, "reason", err)
				continue
			}
			d.passOK++
			d.seq++
			return frame.Frame{Data: data, Format: format, Seq: d.seq, Time: d.opts.Now(), Source: d.source}, nil
		}
		if !d.opts.Loop {
			return frame.Frame{}, fmt.Errorf("%w (%d files in %s)", ErrExhausted, len(d.names), d.opts.Dir)
		}
		if d.passOK == 0 && !d.stale {
			// A whole pass without an image: report it, and start the
			// next Capture with a fresh listing.
			d.stale = true
			if len(d.names) == 0 {
				return frame.Frame{}, fmt.Errorf("capture: %s: no .jpg, .jpeg or .png files left in the folder: %w",
					d.source, capture.ErrDeviceGone)
			}
			return frame.Frame{}, fmt.Errorf("capture: %s: none of the %d image files in the folder was readable "+
				"(see the logged reasons): %w", d.source, len(d.names), capture.ErrDeviceGone)
		}
		if err := d.list(); err != nil {
			return frame.Frame{}, fmt.Errorf("%w: %w", capture.ErrDeviceGone, err)
		}
	}
}

// SkippedNonRegular is the number of distinct files skipped because they
// are not regular files (FIFOs, devices, sockets, directories named like
// images). Call it from the goroutine that calls Capture.
func (d *Source) SkippedNonRegular() int { return len(d.notRegular) }

// load reads one file and checks that it is a complete JPEG or PNG.
func (d *Source) load(name string) ([]byte, frame.Format, error) {
	// Only regular files: opening a FIFO would block capture for good.
	f, st, err := regularfile.Open(filepath.Join(d.opts.Dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", errors.New("file vanished")
	}
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	if st.Size() > d.opts.MaxFileSize {
		return nil, "", fmt.Errorf("file is %d bytes, over the %d-byte limit", st.Size(), d.opts.MaxFileSize)
	}
	data, err := io.ReadAll(io.LimitReader(f, d.opts.MaxFileSize+1))
	if err != nil {
		return nil, "", err
	}
	if int64(len(data)) > d.opts.MaxFileSize {
		return nil, "", fmt.Errorf("file grew past the %d-byte limit while being read", d.opts.MaxFileSize)
	}
	format, err := checkImage(data)
	if err != nil {
		return nil, "", err
	}
	return data, format, nil
}

var pngMagic = []byte("\x89PNG\r\n\x1a\n")

// pngEnd is the IEND chunk every complete PNG ends with.
var pngEnd = []byte("\x00\x00\x00\x00IEND\xae\x42\x60\x82")

// checkImage detects the format from magic bytes and rejects files that
// are visibly incomplete (a copy still in progress): a JPEG must pass
// mjpeg.Validate up to its EOI, a PNG must end with its IEND chunk. Bytes
// after a JPEG's EOI (phones append motion-photo video there) are accepted
// and replayed with the file.
func checkImage(b []byte) (frame.Format, error) {
	switch {
	case len(b) == 0:
		return "", errors.New("file is empty")
	case len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF:
		n := mjpeg.FrameLen(b)
		if n < 0 {
			n = len(b) // no complete frame: let mjpeg.Validate say what is wrong
		}
		if err := mjpeg.Validate(b[:n]); err != nil {
			return "", fmt.Errorf("JPEG of %d bytes: %w", len(b), err)
		}
		return frame.JPEG, nil
	case bytes.HasPrefix(b, pngMagic):
		if !bytes.HasSuffix(b, pngEnd) {
			return "", fmt.Errorf("PNG does not end with an IEND chunk: incomplete (%d bytes)", len(b))
		}
		return frame.PNG, nil
	}
	return "", fmt.Errorf("neither JPEG nor PNG (starts with % x)", b[:min(len(b), 8)])
}

// Close marks the source closed. It is safe to call more than once.
func (d *Source) Close() error {
	d.closed = true
	return nil
}
