// Package jpegtest makes the JPEG and YUYV images the capture tests feed
// to the splitter, the MJPEG fixer, the V4L2 source and the directory
// source, and checks what comes out.
package jpegtest

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"testing"
)

// Image returns a colourful image with detail in every 8x8 block,
// so every Huffman table is exercised.
func Image(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			m.Set(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), uint8((x*7 + y*13) % 256), 255})
		}
	}
	return m
}

// Encode encodes m as a baseline JPEG.
func Encode(t testing.TB, m image.Image, quality int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: quality}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Noise encodes a w×h image of random pixels (seeded): FF 00 stuffing
// everywhere in the scan.
func Noise(t testing.TB, w, h int, seed uint64) []byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = byte(rng.Uint32())
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ColourNear reports whether got is within tol of want in every channel.
func ColourNear(got [3]uint8, want color.RGBA, tol int) bool {
	for i, w := range [3]uint8{want.R, want.G, want.B} {
		d := int(got[i]) - int(w)
		if d < -tol || d > tol {
			return false
		}
	}
	return true
}

// Bars are 75 % colour bars plus black and a near-white.
var Bars = []color.RGBA{
	{191, 191, 191, 255}, {191, 191, 0, 255}, {0, 191, 191, 255}, {0, 191, 0, 255},
	{191, 0, 191, 255}, {191, 0, 0, 255}, {0, 0, 191, 255}, {0, 0, 0, 255}, {250, 250, 250, 255},
}

// BarsFrame builds a YUYV frame of vertical colour bars the way a
// camera would: full-range JFIF YCbCr of each colour, squeezed into the
// limited range unless full is set. Bytes past 2*w in each row are padding
// and filled with junk, which must not show up anywhere.
func BarsFrame(w, h, stride int, full bool) []byte {
	frame := bytes.Repeat([]byte{0xA5}, stride*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x += 2 {
			c := Bars[x*len(Bars)/w]
			yy, cb, cr := color.RGBToYCbCr(c.R, c.G, c.B)
			if !full {
				yy = uint8(16 + (int(yy)*219+127)/255)
				cb = uint8(128 + ((int(cb)-128)*224)/255)
				cr = uint8(128 + ((int(cr)-128)*224)/255)
			}
			copy(frame[y*stride+2*x:], []byte{yy, cb, yy, cr})
		}
	}
	return frame
}

// CheckBars fails unless jpg decodes to w×h colour bars within tol.
func CheckBars(t *testing.T, jpg []byte, w, h, tol int) {
	t.Helper()
	m, err := jpeg.Decode(bytes.NewReader(jpg))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if m.Bounds() != image.Rect(0, 0, w, h) {
		t.Fatalf("decoded size %v, want %dx%d", m.Bounds(), w, h)
	}
	barW := w / len(Bars)
	for i, want := range Bars {
		x := i*w/len(Bars) + barW/2
		for _, y := range []int{0, h / 2, h - 1} {
			r, g, b, _ := m.At(x, y).RGBA()
			got := [3]uint8{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8)}
			if !ColourNear(got, want, tol) {
				t.Errorf("bar %d at (%d,%d): got %v, want %v ± %d", i, x, y, got, want, tol)
			}
		}
	}
}

// StripDHT returns the baseline JPEG b without its Huffman table segments,
// as UVC cameras send MJPEG.
func StripDHT(t testing.TB, b []byte) []byte {
	t.Helper()
	out := []byte{0xFF, 0xD8}
	stripped := 0
	p := 2
	for p+4 <= len(b) && b[p] == 0xFF && b[p+1] != 0xDA { // up to the first scan
		n := 2 + (int(b[p+2])<<8 | int(b[p+3]))
		if b[p+1] == 0xC4 {
			stripped++
		} else {
			out = append(out, b[p:p+n]...)
		}
		p += n
	}
	if stripped == 0 {
		t.Fatal("frame had no DHT to strip")
	}
	return append(out, b[p:]...)
}
