package s3_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"framepush/frame"
	"framepush/receiver"
	"framepush/sender"
	s3store "framepush/store/s3"
	"framepush/wire"
)

// BenchmarkS3 measures frames/s through the real sender and framerecv's
// S3 store into versitygw, and, in the same run against the same server, a
// plain minio-go PutObject loop with the same concurrency, size and
// checksum (one PUT, size given, CRC32C header, unsigned payload): the
// limit for this path; and the same loop with If-None-Match: * (the
// conditional PUT framerecv sends so that a resend is a duplicate). It
// reports frames/s (stop-and-wait senders), win-frames/s (senders with the
// pipelining window, as agents run by default), plain-frames/s,
// cond-frames/s and the ratios x-plain, win-x-plain and x-cond (the target
// is >= 0.9). The timer covers the stop-and-wait framerecv path only; all
// four run back to back against the same server.
func BenchmarkS3(b *testing.B) {
	for _, size := range []int{64 << 10, 1 << 20} {
		for _, agents := range []int{1, 8} {
			b.Run(fmt.Sprintf("size=%dKiB/agents=%d", size>>10, agents), func(b *testing.B) {
				benchS3(b, size, agents)
			})
		}
	}
}

func benchS3(b *testing.B, size, agents int) {
	r := start(b, s3store.Config{Instance: "bench"}, receiver.Options{})
	payload := jpeg(1, size)
	frames := max(b.N, agents)

	// framerecv path: agents senders share the frames; the windowed ones
	// pipeline (the agent's default), the others wait for each GOT IMAGE.
	newSenders := func(name string, w sender.Window) []*sender.Sender {
		ss := make([]*sender.Sender, agents)
		for i := range ss {
			s, err := sender.New(sender.Options{Addresses: []string{r.addr}, Extension: true, Name: fmt.Sprintf("%s-%d", name, i),
				Checksum: wire.ChecksumCRC32C, Terminator: wire.TermLF, Window: w})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close(context.Background())
			ss[i] = s
		}
		return ss
	}
	senders := newSenders("bench", sender.Window{})
	windowed := newSenders("bench-win", sender.Window{Frames: sender.DefaultWindowFrames})
	var next atomic.Int64
	var wg sync.WaitGroup
	run := func(work func(i int, n int64) error) time.Duration {
		next.Store(0)
		start := time.Now()
		for i := range agents {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					n := next.Add(1)
					if n > int64(frames) {
						return
					}
					if err := work(i, n); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		return time.Since(start)
	}
	base := time.Now().UTC()
	b.SetBytes(int64(size))
	b.ResetTimer()
	took := run(func(i int, n int64) error {
		f := frame.Frame{Data: payload, Seq: uint64(n), Time: base.Add(time.Duration(n))}
		return senders[i].Deliver(context.Background(), f)
	})
	b.StopTimer()

	// Each windowed sender submits its share and flushes: one goroutine per
	// sender, as in the agent's send loop.
	var winFrames atomic.Int64
	winStart := time.Now()
	for i := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			done := func(o sender.Outcome) {
				if o.Err != nil {
					b.Error(o.Err)
				}
			}
			for n := int64(i + 1); n <= int64(frames); n += int64(agents) {
				windowed[i].Submit(ctx, frame.Frame{Data: payload, Seq: uint64(n), Time: base.Add(time.Duration(n))}, nil, done)
				winFrames.Add(1)
			}
			windowed[i].Flush(ctx, done)
		}()
	}
	wg.Wait()
	win := time.Since(winStart)

	c := r.gw.Client(b)
	sum := crc32.Checksum(payload, crc32.MakeTable(crc32.Castagnoli))
	var cs [4]byte
	binary.BigEndian.PutUint32(cs[:], sum)
	opts := minio.PutObjectOptions{DisableMultipart: true, DisableContentSha256: true, ContentType: "image/jpeg",
		UserMetadata: map[string]string{"x-amz-checksum-crc32c": base64.StdEncoding.EncodeToString(cs[:])}}

	plain := run(func(i int, n int64) error {
		_, err := c.PutObject(context.Background(), bucket, plainKey("plain", base, i, n), bytes.NewReader(payload), int64(size), opts)
		return err
	})
	// The same loop with If-None-Match: *, the conditional PUT framerecv
	// needs to recognise resends: what idempotence costs the server.
	cond := opts
	cond.SetMatchETagExcept("*")
	conditional := run(func(i int, n int64) error {
		_, err := c.PutObject(context.Background(), bucket, plainKey("cond", base, i, n), bytes.NewReader(payload), int64(size), cond)
		return err
	})
	fps := float64(frames) / took.Seconds()
	wfps := float64(winFrames.Load()) / win.Seconds()
	pfps := float64(frames) / plain.Seconds()
	cfps := float64(frames) / conditional.Seconds()
	b.ReportMetric(fps, "frames/s")
	b.ReportMetric(pfps, "plain-frames/s")
	b.ReportMetric(fps/pfps, "x-plain")
	b.ReportMetric(wfps, "win-frames/s")
	b.ReportMetric(wfps/pfps, "win-x-plain")
	b.ReportMetric(cfps, "cond-frames/s")
	b.ReportMetric(fps/cfps, "x-cond")
}

// plainKey has the depth of framerecv's keys (prefix/name/date/hour/id),
// so that the store does the same folder work for both loops.
func plainKey(prefix string, t time.Time, agent int, n int64) string {
	return fmt.Sprintf("%s/bench-%d/%s/%s/%d.jpg", prefix, agent, t.Format("2006-01-02"), t.Format("15"), n)
}
