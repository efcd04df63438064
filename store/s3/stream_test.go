package s3_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"hash/crc32"
	"io/fs"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"framepush/internal/testutil"
	"framepush/receiver"
	s3store "framepush/store/s3"
	"framepush/wire"
)

func crc32c(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }

// streamMeta announces the checksum of data, as the agent's extension does.
func streamMeta(id string, data []byte, sha bool) *wire.Meta {
	m := &wire.Meta{Name: "gate", ID: id, Time: captureBase}
	if sha {
		m.SHA256, m.HasSHA256 = sha256.Sum256(data), true
	} else {
		m.CRC32C, m.HasCRC32C = crc32c(data), true
	}
	return m
}

// metricValue is the value of one metric line, "" when absent.
func metricValue(t testing.TB, r *rig, name string) string {
	t.Helper()
	for _, line := range strings.Split(metricsText(t, r.srv), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// assertNothingStored: no object under key, no multipart upload left, and
// no file in versitygw's bucket folder (not even a temporary one).
func assertNothingStored(t *testing.T, r *rig, key string) {
	t.Helper()
	c := r.gw.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if info, err := c.StatObject(ctx, bucket, key, minio.StatObjectOptions{}); err == nil {
		t.Errorf("object %s exists (%d bytes) after an aborted stream", key, info.Size)
	} else if code := minio.ToErrorResponse(err).Code; code != "NoSuchKey" {
		t.Errorf("stat %s: %v, want NoSuchKey", key, err)
	}
	for u := range c.ListIncompleteUploads(ctx, bucket, "", true) {
		if u.Err != nil {
			t.Fatalf("list multipart uploads: %v", u.Err)
		}
		t.Errorf("multipart upload left behind: %s (%s)", u.Key, u.UploadID)
	}
	if got := objects(t, r.gw); len(got) != 0 {
		t.Errorf("%d objects in the bucket after an aborted stream, want 0", len(got))
	}
	// versitygw may still be cleaning up after the short body (a named
	// temporary file where the file system has no O_TMPFILE): what must
	// not be is a file that stays.
	var left []string
	files := func() bool {
		left = nil
		_ = filepath.WalkDir(filepath.Join(r.gw.Root, bucket), func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				left = append(left, p)
			}
			return nil
		})
		return len(left) == 0
	}
	deadline := time.Now().Add(10 * time.Second)
	for !files() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if len(left) > 0 {
		t.Errorf("files left in the store's bucket folder: %v", left)
	}
}

// A frame with an announced checksum is streamed: its PUT runs while the
// payload arrives. It lands byte-identical with its metadata, and the
// receiver's Stored.Data copy (Options.KeepData) is the whole payload.
func TestStreamedFrameLandsAndKeepsData(t *testing.T) {
	r := start(t, s3store.Config{}, receiver.Options{KeepData: 4 << 20})
	for i, sha := range []bool{false, true} {
		data := jpeg(uint64(i), 3<<20+17) // many reads, not one copy buffer
		id := []string{"s1", "s2"}[i]
		ans, err := rawFrame(t, r.addr, data, streamMeta(id, data, sha))
		if err != nil || ans != wire.GotImage {
			t.Fatalf("frame %s: %q %v", id, ans, err)
		}
		o, ok := objects(t, r.gw)["site1/gate/2026-11-24/05/"+id+".jpg"]
		if !ok || !bytes.Equal(o.data, data) {
			t.Fatalf("frame %s not in the bucket byte for byte (found %v)", id, ok)
		}
		if o.meta["framepush-id"] != id || o.meta["framepush-device"] != "gate" {
			t.Errorf("frame %s metadata %v", id, o.meta)
		}
		r.mu.Lock()
		st := r.stored[len(r.stored)-1]
		r.mu.Unlock()
		if !bytes.Equal(st.Data, data) {
			t.Errorf("frame %s: Stored.Data is %d bytes, not the payload", id, len(st.Data))
		}
	}
	if v := metricValue(t, r, "framerecv_store_streamed_puts_total"); v != "2" {
		t.Errorf("framerecv_store_streamed_puts_total %q, want 2", v)
	}
	if v := metricValue(t, r, "framerecv_store_stream_fallbacks_total"); v != "0" {
		t.Errorf("framerecv_store_stream_fallbacks_total %q, want 0", v)
	}

	// Without an announced checksum the frame takes the buffered path.
	data := jpeg(9, 100000)
	if ans, err := rawFrame(t, r.addr, data, &wire.Meta{Name: "gate", ID: "b1", Time: captureBase}); err != nil || ans != wire.GotImage {
		t.Fatalf("unannounced frame: %q %v", ans, err)
	}
	if v := metricValue(t, r, "framerecv_store_streamed_puts_total"); v != "2" {
		t.Errorf("frame without a checksum was streamed: framerecv_store_streamed_puts_total %q, want 2", v)
	}
	if o := objects(t, r.gw)["site1/gate/2026-11-24/05/b1.jpg"]; !bytes.Equal(o.data, data) {
		t.Errorf("unannounced frame not stored byte for byte")
	}
}

// A client that goes away mid-payload, after its PUT started: the upload
// is aborted and the store holds nothing, neither under the final key nor
// as a multipart upload or a temporary file.
func TestStreamAbortedByDisconnectStoresNothing(t *testing.T) {
	r := start(t, s3store.Config{}, receiver.Options{})
	data := jpeg(1, 2<<20)
	c, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(wire.AppendSize(nil, int64(len(data)), streamMeta("gone", data, false), wire.TermLF)); err != nil {
		t.Fatal(err)
	}
	if err := wire.NewAnswerReader(c).Expect(wire.GotSize); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(data[:len(data)-1]); err != nil { // all but the last byte
		t.Fatal(err)
	}
	testutil.WaitFor(t, "streamed PUT started", 20*time.Second, func() bool {
		return metricValue(t, r, "framerecv_store_streamed_puts_total") == "1"
	})
	c.Close()
	testutil.WaitFor(t, "disconnect counted", 20*time.Second, func() bool {
		return metricValue(t, r, `framerecv_rejects_total{reason="disconnect"}`) == "1"
	})
	assertNothingStored(t, r, "site1/gate/2026-11-24/05/gone.jpg")
	if r.store.Ready() != nil {
		t.Errorf("an aborted stream marked the store unusable: %v", r.store.Ready())
	}
	// The same frame, sent in full, is then stored (no leftover blocks it).
	if ans, err := rawFrame(t, r.addr, data, streamMeta("gone", data, false)); err != nil || ans != wire.GotImage {
		t.Fatalf("resend: %q %v", ans, err)
	}
	if o := objects(t, r.gw)["site1/gate/2026-11-24/05/gone.jpg"]; !bytes.Equal(o.data, data) {
		t.Errorf("resent frame not stored byte for byte")
	}
}

// A payload that does not match its announced checksum is answered
// ERR checksum, and the streamed PUT, which never got the last byte, stores
// nothing.
func TestStreamWrongChecksumStoresNothing(t *testing.T) {
	r := start(t, s3store.Config{}, receiver.Options{})
	for _, sha := range []bool{false, true} {
		data := jpeg(2, 1<<20)
		meta := streamMeta("bad", data, sha)
		data[len(data)/2] ^= 1 // damaged in transit, past the first bytes
		ans, err := rawFrame(t, r.addr, data, meta)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(ans, "ERR checksum") {
			t.Fatalf("answer %q, want ERR checksum", ans)
		}
		assertNothingStored(t, r, "site1/gate/2026-11-24/05/bad.jpg")
	}
	if v := metricValue(t, r, "framerecv_store_streamed_puts_total"); v != "2" {
		t.Errorf("framerecv_store_streamed_puts_total %q, want 2 (the frames were streamed)", v)
	}
}

// The store frozen (SIGSTOP) while a frame streams into it: the answer is
// a retryable ERR, and once the store is back a resend is stored once.
func TestStreamStoreStoppedMidPayload(t *testing.T) {
	r := start(t, s3store.Config{Timeout: 1500 * time.Millisecond, ProbeEvery: 100 * time.Millisecond}, receiver.Options{})
	data := jpeg(3, 2<<20)
	meta := streamMeta("frozen", data, false)
	c, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := c.Write(wire.AppendSize(nil, int64(len(data)), meta, wire.TermLF)); err != nil {
		t.Fatal(err)
	}
	ar := wire.NewAnswerReader(c)
	if err := ar.Expect(wire.GotSize); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(data[:len(data)/2]); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "streamed PUT started", 20*time.Second, func() bool {
		return metricValue(t, r, "framerecv_store_streamed_puts_total") == "1"
	})
	r.gw.Stop()
	cont := true
	defer func() {
		if cont {
			r.gw.Cont()
		}
	}()
	if _, err := c.Write(data[len(data)/2:]); err != nil {
		t.Fatal(err)
	}
	err = ar.Expect(wire.GotImage)
	ans := errText(err)
	if err == nil || !strings.HasPrefix(ans, "ERR ") || wire.Permanent(strings.Fields(ans)[1]) {
		t.Fatalf("answer %q with the store stopped, want a retryable ERR", ans)
	}
	testutil.WaitFor(t, "store marked unusable", 20*time.Second, func() bool { return r.store.Ready() != nil })
	r.gw.Cont()
	cont = false
	testutil.WaitFor(t, "store usable again", 30*time.Second, func() bool { return r.store.Ready() == nil })
	if ans, err := rawFrame(t, r.addr, data, meta); err != nil || ans != wire.GotImage {
		t.Fatalf("resend after the store came back: %q %v", ans, err)
	}
	got := objects(t, r.gw)
	if o := got["site1/gate/2026-11-24/05/frozen.jpg"]; len(got) != 1 || !bytes.Equal(o.data, data) {
		t.Fatalf("%d objects, want the frame once, byte for byte", len(got))
	}
}

// A streamed resend of a stored frame is a duplicate, also when it is
// large enough that the store refuses the conditional PUT (412) before it
// read the body and drops the connection under it (versitygw does); and a
// different frame under the same name and id is kept under its own key.
func TestStreamedResendIsDuplicate(t *testing.T) {
	r := start(t, s3store.Config{}, receiver.Options{})
	data := jpeg(4, 3<<20)
	for i := range 3 {
		if ans, err := rawFrame(t, r.addr, data, streamMeta("again", data, false)); err != nil || ans != wire.GotImage {
			t.Fatalf("send %d: %q %v", i, ans, err)
		}
	}
	r.mu.Lock()
	dups := 0
	for _, st := range r.stored {
		if st.Duplicate {
			dups++
		}
	}
	r.mu.Unlock()
	if dups != 2 {
		t.Errorf("%d duplicates, want 2", dups)
	}
	if r.store.Ready() != nil {
		t.Errorf("a duplicate marked the store unusable: %v", r.store.Ready())
	}
	other := jpeg(5, 3<<20)
	if ans, err := rawFrame(t, r.addr, other, streamMeta("again", other, false)); err != nil || ans != wire.GotImage {
		t.Fatalf("conflicting frame: %q %v", ans, err)
	}
	got := objects(t, r.gw)
	if o := got["site1/gate/2026-11-24/05/again.jpg"]; !bytes.Equal(o.data, data) {
		t.Errorf("first frame not stored byte for byte")
	}
	var conflicts [][]byte
	for key, o := range got {
		if strings.Contains(key, ".conflict-") {
			conflicts = append(conflicts, o.data)
		}
	}
	if len(got) != 2 || len(conflicts) != 1 || !bytes.Equal(conflicts[0], other) {
		t.Errorf("%d objects, %d conflicts: want the frame and the other frame apart", len(got), len(conflicts))
	}
	if v := metricValue(t, r, "framerecv_store_duplicates_total"); v != "2" {
		t.Errorf("framerecv_store_duplicates_total %q, want 2", v)
	}
}

// The receiver refuses a frame whose payload passed its checksum (bytes
// past the payload of an unterminated SIZE line, cut by the settle
// window): the streamed PUT, which had every byte but the last one, is
// aborted, and the store, which would have accepted the complete and
// correct body, holds nothing: the body held back the last byte.
// (Without the hold-back this would be a race the abort usually wins;
// TestStreamBodyHoldsBackLastByte checks the hold-back itself.)
func TestStreamRefusedAfterPayloadStoresNothing(t *testing.T) {
	r := start(t, s3store.Config{}, receiver.Options{})
	data := jpeg(6, 500000)
	line := strings.TrimSuffix(string(wire.AppendSize(nil, int64(len(data)), streamMeta("cut", data, false), wire.TermLF)), "\n")
	c, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write([]byte(line)); err != nil { // unterminated, as the seed client sends it
		t.Fatal(err)
	}
	ar := wire.NewAnswerReader(c)
	if err := ar.Expect(wire.GotSize); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(append(append([]byte{}, data...), "SIZE 5"...)); err != nil {
		t.Fatal(err)
	}
	err = ar.Expect(wire.GotImage)
	if ans := errText(err); !strings.HasPrefix(ans, "ERR protocol") {
		t.Fatalf("answer %q, want ERR protocol (bytes after the payload)", ans)
	}
	if v := metricValue(t, r, "framerecv_store_streamed_puts_total"); v != "1" {
		t.Fatalf("framerecv_store_streamed_puts_total %q, want 1 (the frame was streamed)", v)
	}
	assertNothingStored(t, r, "site1/gate/2026-11-24/05/cut.jpg")
}
