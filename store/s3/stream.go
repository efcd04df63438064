package s3

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"

	"framepush/receiver"
)

// Streamed PUT: a frame whose checksum the agent announced (crc32c= or
// sha256=) starts its PUT as soon as its first bytes arrived, and the
// payload flows into the request body while the rest of it still comes from
// the agent, so the transfer from the agent and the PUT overlap instead of
// following each other. The announced checksum goes in the x-amz-checksum
// header, so the store verifies what it got.
//
// The payload is still kept in the frame's memory buffer (the same budget
// as the buffered path): the id-conflict branch and the fallback below
// need the whole frame again, and the request body reads from that buffer
// rather than through a pipe, so a store that stops reading never stalls
// the agent's connection (Write never blocks).
//
// Safety: the body serves every byte but the last one until Commit, that
// is until the receiver verified the whole payload against the announced
// checksum (and found no bytes past it). A frame that fails before (agent
// gone, too slow, wrong checksum) is aborted: the body's Read returns an
// error, the request is cancelled, and the store, having got fewer bytes
// than the Content-Length, stores nothing, whether or not it checks the
// checksum header. A PUT that is refused (412 If-None-Match: *) or fails is
// handled exactly as a buffered one, from the buffer.

// errAborted ends the body of a frame that is not committed.
var errAborted = errors.New("frame abandoned before it was complete: upload aborted")

// streamBody is the request body of a streamed PUT. Bytes [0:avail) of
// data are final and may be sent; Write extends avail, release lets the
// last byte go, abort ends the body with an error. After abort, Read
// never touches data again, so the buffer can go back to its pool even
// if the HTTP transport still calls Read.
type streamBody struct {
	mu    sync.Mutex
	cond  sync.Cond
	data  []byte // the whole frame's buffer, len = frame size
	off   int    // bytes served
	avail int    // bytes that may be served
	err   error  // abort: returned by Read
}

func newStreamBody(data []byte) *streamBody {
	b := &streamBody{data: data}
	b.cond.L = &b.mu
	return b
}

func (b *streamBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.err == nil && b.off == b.avail {
		if b.off == len(b.data) {
			return 0, io.EOF
		}
		b.cond.Wait()
	}
	if b.err != nil {
		return 0, b.err
	}
	n := copy(p, b.data[b.off:b.avail])
	b.off += n
	return n, nil
}

// arrived: the first n bytes of data are in; all but the last byte of the
// frame may be sent.
func (b *streamBody) arrived(n int) {
	b.mu.Lock()
	if a := min(n, len(b.data)-1); a > b.avail {
		b.avail = a
		b.cond.Broadcast()
	}
	b.mu.Unlock()
}

// release lets the last byte go: the frame passed its checks.
func (b *streamBody) release() {
	b.mu.Lock()
	b.avail = len(b.data)
	b.cond.Broadcast()
	b.mu.Unlock()
}

// abort ends the body short, with err.
func (b *streamBody) abort(err error) {
	b.mu.Lock()
	if b.err == nil {
		b.err = err
	}
	b.cond.Broadcast()
	b.mu.Unlock()
}

// streamPut is one streamed PUT in flight.
type streamPut struct {
	body   *streamBody
	key    string
	ext    string
	sum    string
	cancel context.CancelFunc
	began  time.Time
	done   chan struct{} // closed when PutObject returned
	err    error         // PutObject's result, valid once done is closed
}

// streamable: the checksum is known before the bytes, so the store can be
// told it in the PUT's header before the payload arrived.
func streamable(f receiver.Frame) bool { return f.Meta.HasSHA256 || f.Meta.HasCRC32C }

// startStream begins the frame's PUT; u.buf holds its first bytes (at
// least 8, or the whole frame), which decide the extension.
func (u *upload) startStream() {
	s := u.s
	ext := receiver.ExtFor(u.buf[:min(len(u.buf), 8)])
	key, sum, opts := u.putRequest(ext, nil)
	ctx, cancel := context.WithCancel(context.Background())
	sp := &streamPut{body: newStreamBody(u.buf[:u.f.Size]), key: key, ext: ext, sum: sum,
		cancel: cancel, began: time.Now(), done: make(chan struct{})}
	u.stream = sp
	s.m.streamed.Inc()
	go func() {
		defer close(sp.done)
		_, sp.err = s.c.PutObject(ctx, s.bucket, key, sp.body, u.f.Size, opts)
	}()
}

// abortStream ends a streamed PUT that will not be committed and waits for
// it: the store got a short body and stores nothing.
func (u *upload) abortStream() {
	sp := u.stream
	sp.body.abort(errAborted)
	sp.cancel()
	<-sp.done
}

// commitStream lets the last byte go and waits, at most the store timeout,
// for the PUT's answer, then treats it as Commit treats a buffered PUT's.
func (u *upload) commitStream(ext string) (receiver.Committed, error) {
	s, sp := u.s, u.stream
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	early := false
	select {
	case <-sp.done: // ended before it had the whole frame: the store does not hold it from this PUT
		early = true
	default:
		sp.body.release()
		stop := context.AfterFunc(ctx, sp.cancel) // the store timeout, from here
		<-sp.done
		stop()
	}
	s.m.putTime.UpdateDuration(sp.began)
	err := sp.err
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return u.result(ctx, sp.key, sp.sum, ext, &timeoutError{after: s.timeout, err: err})
	}
	er := minio.ToErrorResponse(err)
	var ne net.Error
	if err == nil || (er.StatusCode != 0 && er.Code != "RequestTimeout") || (errors.As(err, &ne) && ne.Timeout()) {
		// The store's answer (stored, 412, 403, 5xx), or no answer in
		// time (the transport's response timeout): as a buffered PUT's.
		return u.result(ctx, sp.key, sp.sum, ext, err)
	}
	// The connection failed under the PUT, or the store gave up on a slow
	// body. A store that refuses the PUT early (versitygw answers
	// If-None-Match's 412 before it read the body, then closes) shows as a
	// reset while the body is still being sent. Look at the key: a frame
	// there is a duplicate (or a conflict), handled as after a 412;
	// nothing there, and the frame is PUT again from memory.
	sp.body.abort(errAborted) // the transport may still call Read
	u.stream = nil
	_, serr := s.c.StatObject(ctx, s.bucket, sp.key, minio.StatObjectOptions{})
	switch {
	case serr == nil:
		return u.duplicate(ctx, sp.key, "s3://"+s.bucket+"/"+sp.key, sp.sum, ext)
	case minio.ToErrorResponse(serr).Code == "NoSuchKey":
		s.m.streamFallbacks.Inc()
		s.log.Info("streamed PUT failed without an answer from the store, nothing stored: PUT again from memory",
			"key", sp.key, "before_last_byte", early, "error", shortError(err))
		return u.commitBuffered(ctx, ext) // within what is left of the timeout
	}
	return u.result(ctx, sp.key, sp.sum, ext, err)
}

// timeoutError is a streamed PUT cancelled at the store timeout.
type timeoutError struct {
	after time.Duration
	err   error
}

func (e *timeoutError) Error() string {
	return "no answer from the store within " + e.after.String() + ": " + e.err.Error()
}

func (e *timeoutError) Unwrap() []error { return []error{context.DeadlineExceeded, e.err} }
