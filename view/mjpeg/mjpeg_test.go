package mjpeg

import (
	"bytes"
	"context"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func serve(t *testing.T, s *Streamer, l *Latest) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/stream.mjpg", func(w http.ResponseWriter, r *http.Request) { s.Serve(context.Background(), w, r, l) })
	mux.HandleFunc("/still.jpg", func(w http.ResponseWriter, r *http.Request) { ServeStill(w, r, l, "x-") })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func open(t *testing.T, url string) (*http.Response, *multipart.Reader) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		return resp, nil
	}
	_, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || params["boundary"] != Boundary {
		t.Fatalf("Content-Type %q", resp.Header.Get("Content-Type"))
	}
	return resp, multipart.NewReader(resp.Body, params["boundary"])
}

func part(t *testing.T, mr *multipart.Reader) []byte {
	t.Helper()
	p, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// With no new image, the current one is sent again after Repeat, so that
// clients with a read timeout keep the stream.
func TestRepeatsTheCurrentImage(t *testing.T) {
	var l Latest
	l.Set(&Image{Data: []byte("\xff\xd8\xffone"), ContentType: "image/jpeg", Time: time.Now()})
	srv := serve(t, &Streamer{Repeat: 20 * time.Millisecond}, &l)
	_, mr := open(t, srv.URL+"/stream.mjpg")
	a, b := part(t, mr), part(t, mr)
	if !bytes.Equal(a, b) || string(a) != "\xff\xd8\xffone" {
		t.Fatalf("parts %q, %q: want the current image twice", a, b)
	}
}

// Streams beyond MaxViewers are answered 503; a still before the first
// image is a 404.
func TestLimitsAndNoImage(t *testing.T) {
	var l Latest
	s := &Streamer{MaxViewers: 1}
	srv := serve(t, s, &l)
	if resp, err := http.Get(srv.URL + "/still.jpg"); err != nil || resp.StatusCode != 404 {
		t.Fatalf("still before an image: %v %v", resp, err)
	}
	first, mr := open(t, srv.URL+"/stream.mjpg")
	if first.StatusCode != 200 || mr == nil {
		t.Fatalf("first stream: %s", first.Status)
	}
	if n := s.Viewers(); n != 1 { // counted before the headers were sent
		t.Fatalf("%d viewers, want 1", n)
	}
	if second, _ := open(t, srv.URL+"/stream.mjpg"); second.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("second stream over the limit: %s", second.Status)
	}
	// The first still works: it gets the image set after it connected.
	l.Set(&Image{Data: []byte("\xff\xd8\xfftwo"), ContentType: "image/jpeg"})
	if got := part(t, mr); string(got) != "\xff\xd8\xfftwo" {
		t.Fatalf("part %q", got)
	}
}
