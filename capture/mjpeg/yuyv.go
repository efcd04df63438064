package mjpeg

import (
	"fmt"
	"image"
	"image/jpeg"
)

// DefaultJPEGQuality is the quality used when an encoder is given none.
const DefaultJPEGQuality = 80

// YUYVOptions describes the raw frames a YUYVEncoder takes.
type YUYVOptions struct {
	Width, Height int
	// Stride is the length of one row in bytes (V4L2's bytesperline),
	// which drivers may pad beyond 2*Width; 0 means 2*Width.
	Stride int
	// Quality is the JPEG quality, 1–100; 0 means DefaultJPEGQuality.
	Quality int
	// FullRange says the samples already use the full 0–255 range
	// (V4L2_QUANTIZATION_FULL_RANGE). Otherwise they are taken as BT.601
	// limited range (Y 16–235, Cb/Cr 16–240), what V4L2 YUYV means unless
	// the driver says otherwise, and stretched to the full range JPEG (JFIF)
	// assumes: passing limited-range samples through gives grey blacks and
	// dull whites.
	FullRange bool
}

// YUYVEncoder turns packed YUYV 4:2:2 frames (Y0 Cb Y1 Cr per pixel pair)
// into JPEGs without converting to RGB: the samples are de-interleaved into
// a 4:2:2 image.YCbCr, which image/jpeg encodes straight from its planes.
// The image and the output buffer are reused from frame to frame. An
// encoder is not safe for concurrent use.
type YUYVEncoder struct {
	opts YUYVOptions
	img  *image.YCbCr
	jopt jpeg.Options
	sink yuyvSink
}

// NewYUYVEncoder returns an encoder for frames described by o.
func NewYUYVEncoder(o YUYVOptions) (*YUYVEncoder, error) {
	if o.Width <= 0 || o.Height <= 0 {
		return nil, fmt.Errorf("capture: YUYV frame size %dx%d: width and height must be positive", o.Width, o.Height)
	}
	if o.Width%2 != 0 {
		return nil, fmt.Errorf("capture: YUYV frame width %d is odd: YUYV packs pixels in pairs, so the width must be even", o.Width)
	}
	if o.Stride == 0 {
		o.Stride = 2 * o.Width
	}
	if o.Stride < 2*o.Width {
		return nil, fmt.Errorf("capture: YUYV row length %d bytes is shorter than 2*width (%d)", o.Stride, 2*o.Width)
	}
	if o.Quality == 0 {
		o.Quality = DefaultJPEGQuality
	}
	if o.Quality < 1 || o.Quality > 100 {
		return nil, fmt.Errorf("capture: JPEG quality %d is outside 1..100", o.Quality)
	}
	return &YUYVEncoder{
		opts: o,
		img:  image.NewYCbCr(image.Rect(0, 0, o.Width, o.Height), image.YCbCrSubsampleRatio422),
		jopt: jpeg.Options{Quality: o.Quality},
	}, nil
}

// FrameSize is the smallest raw frame Load accepts: every row but the last
// at full stride, the last one without its padding.
func (e *YUYVEncoder) FrameSize() int {
	return e.opts.Stride*(e.opts.Height-1) + 2*e.opts.Width
}

// Load de-interleaves one raw frame into the encoder's image. This is the
// only pass over src, so a caller holding a driver buffer can give it back
// right after Load and encode afterwards. A short frame yields an error
// wrapping ErrTruncated and leaves the image as it was.
func (e *YUYVEncoder) Load(src []byte) error {
	if need := e.FrameSize(); len(src) < need {
		return fmt.Errorf("%w: YUYV frame has %d bytes, %dx%d (stride %d) needs %d",
			ErrTruncated, len(src), e.opts.Width, e.opts.Height, e.opts.Stride, need)
	}
	w, m := e.opts.Width, e.img
	for y := 0; y < e.opts.Height; y++ {
		row := src[y*e.opts.Stride : y*e.opts.Stride+2*w]
		ys := m.Y[y*m.YStride : y*m.YStride+w]
		cb := m.Cb[y*m.CStride : y*m.CStride+w/2]
		cr := m.Cr[y*m.CStride : y*m.CStride+w/2]
		if e.opts.FullRange {
			yuyvSplitRow(row, ys, cb, cr)
		} else {
			yuyvSplitRowLimited(row, ys, cb, cr)
		}
	}
	return nil
}

// yuyvSplitRow copies one row of pixel pairs into the planes.
func yuyvSplitRow(row, ys, cb, cr []byte) {
	for i := range cb {
		q := row[4*i : 4*i+4 : 4*i+4]
		ys[2*i] = q[0]
		cb[i] = q[1]
		ys[2*i+1] = q[2]
		cr[i] = q[3]
	}
}

// yuyvSplitRowLimited is yuyvSplitRow with limited-to-full range expansion.
func yuyvSplitRowLimited(row, ys, cb, cr []byte) {
	for i := range cb {
		q := row[4*i : 4*i+4 : 4*i+4]
		ys[2*i] = yuyvLumaFull[q[0]]
		cb[i] = yuyvChromaFull[q[1]]
		ys[2*i+1] = yuyvLumaFull[q[2]]
		cr[i] = yuyvChromaFull[q[3]]
	}
}

// yuyvLumaFull and yuyvChromaFull map BT.601 limited-range samples to the
// full range: Y' = (Y-16)*255/219, C' = (C-128)*255/224 + 128, rounded and
// clamped.
var yuyvLumaFull, yuyvChromaFull = yuyvRangeTables()

func yuyvRangeTables() (luma, chroma [256]byte) {
	clamp := func(v float64) byte {
		switch {
		case v <= 0:
			return 0
		case v >= 255:
			return 255
		}
		return byte(v + 0.5)
	}
	for i := range 256 {
		luma[i] = clamp(float64(i-16) * 255 / 219)
		chroma[i] = clamp(float64(i-128)*255/224 + 128)
	}
	return luma, chroma
}

// Encode appends the JPEG of the loaded image to dst and returns it. When
// dst has room for the result it does not grow it.
func (e *YUYVEncoder) Encode(dst []byte) ([]byte, error) {
	e.sink.b = dst
	err := jpeg.Encode(&e.sink, e.img, &e.jopt)
	out := e.sink.b
	e.sink.b = nil
	if err != nil {
		return dst, fmt.Errorf("capture: encode %dx%d JPEG: %w", e.opts.Width, e.opts.Height, err)
	}
	return out, nil
}

// EncodeFrame is Load followed by Encode.
func (e *YUYVEncoder) EncodeFrame(dst, src []byte) ([]byte, error) {
	if err := e.Load(src); err != nil {
		return dst, err
	}
	return e.Encode(dst)
}

// Image returns the encoder's image as last loaded. It is overwritten by
// the next Load.
func (e *YUYVEncoder) Image() *image.YCbCr { return e.img }

// yuyvSink is an append-only byte sink with the Flush and WriteByte methods
// that make image/jpeg write to it directly instead of through a freshly
// allocated bufio.Writer.
type yuyvSink struct{ b []byte }

func (s *yuyvSink) Write(p []byte) (int, error) {
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *yuyvSink) WriteByte(c byte) error {
	s.b = append(s.b, c)
	return nil
}

func (s *yuyvSink) Flush() error { return nil }
