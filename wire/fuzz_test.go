package wire

import (
	"errors"
	"io"
	"testing"
)

func outcome(err error) string {
	var pe *ProtocolError
	var re *RejectError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &pe):
		return "protocol:" + pe.Reason
	case errors.As(err, &re):
		return "reject:" + re.Reason
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	}
	return "other:" + err.Error()
}

// FuzzParseRequest checks that the receiver's parser never panics, never
// claims more bytes than it has, and reaches the same verdicts however the
// stream is segmented.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		"SIZE 5\nhelloBYE BYE ", "SIZE 12", "SIZE 3\r\nabc", "SIZE -1", "SIZE 0",
		"SIZE abc", "SIZE 99999999999999999999", "garbageSIZE 1\n", "BYE BYE trailing",
		"SIZE 4 name=cam id=1 ts=1 crc32c=00000000\nabcd", "SIZE 2 sha256=zz\n",
		"\r\n\r\nSIZE\t1\n.", "SIZE 1 k=v k2=v2\n.BYE",
	} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, stream []byte, step uint8) {
		if len(stream) > 1<<16 {
			return
		}
		for cut := 0; cut <= len(stream); cut++ {
			req, n, err := ParseRequest(stream[:cut], cut == len(stream))
			if n < 0 || n > cut {
				t.Fatalf("consumed %d of %d bytes", n, cut)
			}
			if err == nil && req.Kind == KindSize && req.Size <= 0 {
				t.Fatalf("accepted size %d", req.Size)
			}
		}
		whole, werr := parseAll(t, stream, func() int { return len(stream) })
		chunked, cerr := parseAll(t, stream, func() int { return 1 + int(step)%17 })
		if outcome(werr) != outcome(cerr) || len(whole) != len(chunked) {
			t.Fatalf("segmentation changed the verdict: whole %d reqs %v, chunked %d reqs %v", len(whole), werr, len(chunked), cerr)
		}
		for i := range whole {
			if whole[i].Kind != chunked[i].Kind || whole[i].Size != chunked[i].Size || whole[i].Meta != chunked[i].Meta {
				t.Fatalf("request %d differs: %+v vs %+v", i, whole[i], chunked[i])
			}
		}
	})
}

// FuzzAnswerReader checks the sender's answer reader the same way.
func FuzzAnswerReader(f *testing.F) {
	for _, s := range []string{
		"GOT SIZEGOT IMAGE", "GOT SIZE\r\nGOT IMAGE\r\n", "ERR too-large max=1\n",
		"GOT SIZE ERR busy\n", "HTTP/1.1 200 OK\r\n", "GOT", "\n\n\nGOT SIZE",
	} {
		f.Add([]byte(s), uint8(1))
	}
	f.Fuzz(func(t *testing.T, stream []byte, step uint8) {
		if len(stream) > 1<<16 {
			return
		}
		run := func(step int) []string {
			a := NewAnswerReader(&chunkReader{data: stream, step: step})
			var got []string
			for _, want := range []string{GotSize, GotImage, GotSize, GotImage} {
				err := a.Expect(want)
				got = append(got, outcome(err))
				if err != nil {
					break
				}
			}
			return got
		}
		whole, chunked := run(len(stream)+1), run(1+int(step)%11)
		if len(whole) != len(chunked) {
			t.Fatalf("segmentation changed the verdicts: whole %v, chunked %v", whole, chunked)
		}
		for i := range whole {
			if whole[i] != chunked[i] {
				t.Fatalf("segmentation changed the verdicts: whole %v, chunked %v", whole, chunked)
			}
		}
	})
}
