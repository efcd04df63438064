package s3_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sync"
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

	c := r.gw.Client(b)
	sum := crc32.Checksum(payload, crc32.MakeTable(crc32.Castagnoli))
	var cs [4]byte
	binary.BigEndian.PutUint32(cs[:], sum)
	opts := minio.PutObjectOptions{DisableMultipart: true, DisableContentSha256: true, ContentType: "image/jpeg",
		UserMetadata: map[string]string{"x-amz-checksum-crc32c": base64.StdEncoding.EncodeToString(cs[:])}}
	// The same loop with If-None-Match: *, the conditional PUT framerecv
	// needs to recognise resends: what idempotence costs the server.
	cond := opts
	cond.SetMatchETagExcept("*")

	base := time.Now().UTC()
	newFrame := func(n int64) frame.Frame {
		return frame.Frame{Data: payload, Seq: uint64(n), Time: base.Add(time.Duration(n))}
	}
	// Each path runs its frames [from, to) on agents goroutines; agent i
	// takes every agents-th frame, as agents sharing a load would.
	each := func(from, to int64, work func(i int, n int64) error) time.Duration {
		var wg sync.WaitGroup
		start := time.Now()
		for i := range agents {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := from + int64(i); n < to; n += int64(agents) {
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
	paths := []struct {
		name string
		run  func(from, to int64) time.Duration
		took time.Duration
	}{
		{name: "frames/s", run: func(from, to int64) time.Duration {
			return each(from, to, func(i int, n int64) error { return senders[i].Deliver(context.Background(), newFrame(n)) })
		}},
		{name: "win-frames/s", run: func(from, to int64) time.Duration {
			var wg sync.WaitGroup
			start := time.Now()
			for i := range agents { // one goroutine per sender, as the agent's send loop
				wg.Add(1)
				go func() {
					defer wg.Done()
					done := func(o sender.Outcome) {
						if o.Err != nil {
							b.Error(o.Err)
						}
					}
					for n := from + int64(i); n < to; n += int64(agents) {
						windowed[i].Submit(context.Background(), newFrame(n), nil, done)
					}
					windowed[i].Flush(context.Background(), done)
				}()
			}
			wg.Wait()
			return time.Since(start)
		}},
		{name: "plain-frames/s", run: func(from, to int64) time.Duration {
			return each(from, to, func(i int, n int64) error {
				_, err := c.PutObject(context.Background(), bucket, plainKey("plain", base, i, n), bytes.NewReader(payload), int64(size), opts)
				return err
			})
		}},
		{name: "cond-frames/s", run: func(from, to int64) time.Duration {
			return each(from, to, func(i int, n int64) error {
				_, err := c.PutObject(context.Background(), bucket, plainKey("cond", base, i, n), bytes.NewReader(payload), int64(size), cond)
				return err
			})
		}},
	}
	// Interleaved batches: drift (the bucket filling up, the machine's
	// other load) reaches every path alike, so the ratios compare like
	// with like. Only the first path is under the benchmark timer.
	batch := int64(max(agents*8, 32))
	b.SetBytes(int64(size))
	b.ResetTimer()
	b.StopTimer()
	for from := int64(1); from <= int64(frames); from += batch {
		to := min(from+batch, int64(frames)+1)
		for k := range paths {
			if k == 0 {
				b.StartTimer()
			}
			paths[k].took += paths[k].run(from, to)
			if k == 0 {
				b.StopTimer()
			}
		}
	}
	fps := func(k int) float64 { return float64(frames) / paths[k].took.Seconds() }
	for k := range paths {
		b.ReportMetric(fps(k), paths[k].name)
	}
	b.ReportMetric(fps(0)/fps(2), "x-plain")
	b.ReportMetric(fps(1)/fps(2), "win-x-plain")
	b.ReportMetric(fps(0)/fps(3), "x-cond")
}

// plainKey has the depth of framerecv's keys (prefix/name/date/hour/id),
// so that the store does the same folder work for both loops.
func plainKey(prefix string, t time.Time, agent int, n int64) string {
	return fmt.Sprintf("%s/bench-%d/%s/%s/%d.jpg", prefix, agent, t.Format("2006-01-02"), t.Format("15"), n)
}
