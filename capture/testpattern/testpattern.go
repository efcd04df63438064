package testpattern

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"strconv"
	"time"

	"framepush/frame"
)

// Test-pattern limits: large enough for any real camera size, small enough
// that a typo (width: 64000) fails loudly instead of exhausting memory.
const (
	MinSide = 16
	MaxSide = 8192
)

// Options configures a Pattern. Zero values mean defaults.
type Options struct {
	Width, Height int    // pixels; default 640×480
	JPEGQuality   int    // 1–100; default 80
	Name          string // shown in frame.Frame.Source as "testpattern:<Name>"
	// Now returns the capture time; nil means time.Now. Tests set it.
	Now func() time.Time
}

// Pattern synthesises JPEG frames: scrolling colour bars over a
// scrolling grey ramp, with the frame number in large seven-segment digits
// and the capture date and time under it. It needs no camera, so it is the
// agent's default source and the reference source in tests.
//
// It does not pace itself: Capture renders and returns at once, and the
// trigger decides the rate. Rendering reuses one image and one buffer; each
// frame costs one allocation for its owned bytes plus the encoder's own.
type Pattern struct {
	opts   Options
	source string
	img    *image.YCbCr
	enc    encodeBuffer
	rowY   []byte // scratch rows built once per frame, copied down the image
	rowCb  []byte
	rowCr  []byte
	rampY  []byte
	text   []byte
	seq    uint64
	closed bool
}

// encodeBuffer adds the Flush method image/jpeg looks for, so Encode
// writes straight into the buffer instead of wrapping it in a new
// bufio.Writer every frame.
type encodeBuffer struct{ bytes.Buffer }

func (*encodeBuffer) Flush() error { return nil }

// New checks opts and allocates the frame image.
func New(opts Options) (*Pattern, error) {
	if opts.Width == 0 {
		opts.Width = 640
	}
	if opts.Height == 0 {
		opts.Height = 480
	}
	if opts.JPEGQuality == 0 {
		opts.JPEGQuality = 80
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	for _, side := range []struct {
		name string
		v    int
	}{{"width", opts.Width}, {"height", opts.Height}} {
		if side.v < MinSide || side.v > MaxSide {
			return nil, fmt.Errorf("capture: test pattern %s %d is out of range (allowed %d to %d pixels)",
				side.name, side.v, MinSide, MaxSide)
		}
	}
	if opts.JPEGQuality < 1 || opts.JPEGQuality > 100 {
		return nil, fmt.Errorf("capture: test pattern JPEG quality %d is out of range (allowed 1 to 100)", opts.JPEGQuality)
	}
	source := "testpattern"
	if opts.Name != "" {
		source += ":" + opts.Name
	}
	img := image.NewYCbCr(image.Rect(0, 0, opts.Width, opts.Height), image.YCbCrSubsampleRatio420)
	return &Pattern{
		opts:   opts,
		source: source,
		img:    img,
		rowY:   make([]byte, opts.Width),
		rowCb:  make([]byte, img.CStride),
		rowCr:  make([]byte, img.CStride),
		rampY:  make([]byte, opts.Width),
	}, nil
}

// Capture renders and encodes the next frame. It returns at once.
func (p *Pattern) Capture(ctx context.Context) (frame.Frame, error) {
	if p.closed {
		return frame.Frame{}, fmt.Errorf("capture: %s: capture after close", p.source)
	}
	if err := ctx.Err(); err != nil {
		return frame.Frame{}, err
	}
	seq := p.seq + 1
	now := p.opts.Now()
	p.render(seq, now)
	p.enc.Reset()
	if err := jpeg.Encode(&p.enc, p.img, &jpeg.Options{Quality: p.opts.JPEGQuality}); err != nil {
		return frame.Frame{}, fmt.Errorf("capture: %s: encoding frame %d: %w", p.source, seq, err)
	}
	p.seq = seq
	return frame.Frame{
		Data:   bytes.Clone(p.enc.Bytes()),
		Format: frame.JPEG,
		Seq:    seq,
		Time:   now,
		Source: p.source,
	}, nil
}

// Close marks the source closed. It is safe to call more than once.
func (p *Pattern) Close() error {
	p.closed = true
	return nil
}

// SMPTE-like colour bars in Y'CbCr (BT.601, studio swing): white, yellow,
// cyan, green, magenta, red, blue, black.
var bars = [8][3]byte{
	{235, 128, 128}, {210, 16, 146}, {170, 166, 16}, {145, 54, 34},
	{106, 202, 222}, {81, 90, 240}, {41, 240, 110}, {16, 128, 128},
}

const (
	black = 16
	white = 235
	grey  = 128
)

// render draws frame seq into p.img: the top two thirds are colour bars
// scrolling right, the bottom third a grey ramp scrolling left, and a black
// panel top-left carries the counter and the time.
func (p *Pattern) render(seq uint64, now time.Time) {
	m := p.img
	w, h := p.opts.Width, p.opts.Height
	cw := (w + 1) / 2
	split := h * 2 / 3
	shift := int(seq * uint64(max(w/160, 1)) % uint64(w))

	for x := 0; x < w; x++ {
		bar := bars[((x-shift+w)%w)*8/w]
		p.rowY[x] = bar[0]
		// A triangle wave avoids a hard edge where the ramp wraps.
		t := (x + shift) % w * 2 * 219 / w
		if t > 219 {
			t = 438 - t
		}
		p.rampY[x] = byte(black + t)
	}
	for cx := 0; cx < cw; cx++ {
		bar := bars[((2*cx-shift+w)%w)*8/w]
		p.rowCb[cx], p.rowCr[cx] = bar[1], bar[2]
	}
	for y := 0; y < h; y++ {
		row := p.rowY
		if y >= split {
			row = p.rampY
		}
		copy(m.Y[y*m.YStride:y*m.YStride+w], row)
	}
	for cy := 0; cy < (h+1)/2; cy++ {
		off := cy * m.CStride
		if 2*cy < split {
			copy(m.Cb[off:off+cw], p.rowCb[:cw])
			copy(m.Cr[off:off+cw], p.rowCr[:cw])
		} else {
			fillBytes(m.Cb[off:off+cw], grey)
			fillBytes(m.Cr[off:off+cw], grey)
		}
	}

	// Counter: a fifth of the height, shrunk if the number would not fit.
	margin := max(h/60, 2)
	p.text = strconv.AppendUint(p.text[:0], seq, 10)
	n := len(p.text)
	p.text = now.AppendFormat(p.text, "2006-01-02 15:04:05.000")
	counter, stamp := p.text[:n], p.text[n:]
	big := fitHeight(counter, h/5, w-4*margin)
	small := fitHeight(stamp, max(h/16, 7), w-4*margin)

	panelW := max(textWidth(counter, big), textWidth(stamp, small)) + 2*margin
	panelH := big + small + 3*margin
	p.fillRect(margin, margin, margin+panelW, margin+panelH, black)
	p.drawText(2*margin, 2*margin, big, counter)
	p.drawText(2*margin, 3*margin+big, small, stamp)
}

// fillRect paints luma v and neutral chroma over [x0,x1)×[y0,y1), clipped.
func (p *Pattern) fillRect(x0, y0, x1, y1 int, v byte) {
	m := p.img
	x0, y0 = max(x0, 0), max(y0, 0)
	x1, y1 = min(x1, p.opts.Width), min(y1, p.opts.Height)
	if x0 >= x1 || y0 >= y1 {
		return
	}
	for y := y0; y < y1; y++ {
		fillBytes(m.Y[y*m.YStride+x0:y*m.YStride+x1], v)
	}
	for cy := y0 / 2; cy < (y1+1)/2; cy++ {
		off := cy * m.CStride
		fillBytes(m.Cb[off+x0/2:off+(x1+1)/2], grey)
		fillBytes(m.Cr[off+x0/2:off+(x1+1)/2], grey)
	}
}

// lumaRect paints luma only, clipped: glyph strokes on the black panel,
// whose chroma is already neutral.
func (p *Pattern) lumaRect(x0, y0, x1, y1 int, v byte) {
	m := p.img
	x0, y0 = max(x0, 0), max(y0, 0)
	x1, y1 = min(x1, p.opts.Width), min(y1, p.opts.Height)
	if x0 >= x1 {
		return
	}
	for y := y0; y < y1; y++ {
		fillBytes(m.Y[y*m.YStride+x0:y*m.YStride+x1], v)
	}
}

func fillBytes(b []byte, v byte) {
	for i := range b {
		b[i] = v
	}
}

// Seven-segment glyphs. Bits 0–6 are segments a–g:
//
//	 aaa
//	f   b
//	 ggg
//	e   c
//	 ddd
var segments = [10]uint8{0x3F, 0x06, 0x5B, 0x4F, 0x66, 0x6D, 0x7D, 0x07, 0x7F, 0x6F}

// glyphWidth is the advance of character c at digit height h: digits are
// half as wide as tall, punctuation narrower; every glyph is followed by a
// gap of h/8.
func glyphWidth(c byte, h int) int {
	gap := max(h/8, 1)
	switch c {
	case ':', '.':
		return max(h/6, 2) + gap
	case ' ':
		return h/4 + gap
	}
	return h/2 + gap
}

func textWidth(s []byte, h int) int {
	n := 0
	for _, c := range s {
		n += glyphWidth(c, h)
	}
	return n
}

// fitHeight returns the largest height ≤ want (and ≥ 5) at which s fits
// in width avail.
func fitHeight(s []byte, want, avail int) int {
	h := want
	for h > 5 && textWidth(s, h) > avail {
		h--
	}
	return max(h, 5)
}

// drawText renders s at (x, y) with digit height h in white. It knows the
// digits, '-', ':', '.' and ' ': all a date and a counter need.
func (p *Pattern) drawText(x, y, h int, s []byte) {
	t := max(h/8, 1) // stroke thickness
	w := h / 2
	mid := y + h/2
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			p.drawSegments(x, y, w, h, t, segments[c-'0'])
		case c == '-':
			p.drawSegments(x, y, w, h, t, 0x40)
		case c == ':':
			d := max(h/6, 2)
			p.lumaRect(x, mid-h/4-d/2, x+d, mid-h/4+d-d/2, white)
			p.lumaRect(x, mid+h/4-d/2, x+d, mid+h/4+d-d/2, white)
		case c == '.':
			d := max(h/6, 2)
			p.lumaRect(x, y+h-d, x+d, y+h, white)
		}
		x += glyphWidth(c, h)
	}
}

// drawSegments draws the segments set in mask for a w×h digit cell at
// (x, y) with stroke t.
func (p *Pattern) drawSegments(x, y, w, h, t int, mask uint8) {
	mid := y + h/2 - t/2
	rects := [7][4]int{
		{x, y, x + w, y + t},           // a
		{x + w - t, y, x + w, mid + t}, // b
		{x + w - t, mid, x + w, y + h}, // c
		{x, y + h - t, x + w, y + h},   // d
		{x, mid, x + t, y + h},         // e
		{x, y, x + t, mid + t},         // f
		{x, mid, x + w, mid + t},       // g
	}
	for i, r := range rects {
		if mask&(1<<i) != 0 {
			p.lumaRect(r[0], r[1], r[2], r[3], white)
		}
	}
}
