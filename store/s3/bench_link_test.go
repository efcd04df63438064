package s3_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"

	"framepush/frame"
	"framepush/receiver"
	"framepush/sender"
	s3store "framepush/store/s3"
	"framepush/wire"
)

// BenchmarkS3SlowLink measures what streaming a frame into its PUT buys
// where it should: the agent on a slow link (20 Mbit/s towards framerecv)
// and the store across a network (100 Mbit/s and 5 ms each way), both
// emulated by toxiproxy on loopback, 1 MiB frames, one stop-and-wait
// agent (each frame's time is its transfer plus its PUT, unless they
// overlap). In one run, alternating: framerecv streaming (the default) and
// framerecv with streaming off (Config.Buffered) on the same store, and
// the ratio stream-x-buffered.
//
//	go test -run '^$' -bench S3SlowLink -benchtime 1x ./store/s3/
func BenchmarkS3SlowLink(b *testing.B) {
	const (
		size      = 1 << 20
		agentRate = 20_000_000 / 8  // bytes/s, agent -> framerecv
		storeRate = 100_000_000 / 8 // bytes/s, framerecv -> store
		frames    = 6               // per path and round
	)
	api := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	proxy := func(name, to string, rate int, delay time.Duration) string {
		p := toxiproxy.NewProxy(api, name, "127.0.0.1:0", to)
		if err := p.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(p.Stop)
		toxics := []string{fmt.Sprintf(`{"name":"bw","type":"bandwidth","stream":"upstream","attributes":{"rate":%d}}`, rate/1000)}
		if delay > 0 {
			for _, dir := range []string{"upstream", "downstream"} {
				toxics = append(toxics, fmt.Sprintf(`{"name":"lat_%s","type":"latency","stream":"%s","attributes":{"latency":%d}}`, dir, dir, delay.Milliseconds()))
			}
		}
		for _, js := range toxics {
			if _, err := p.Toxics.AddToxicJson(strings.NewReader(js)); err != nil {
				b.Fatalf("toxic %s: %v", js, err)
			}
		}
		return p.Listen
	}
	first := start(b, s3store.Config{Instance: "bench"}, receiver.Options{}) // only for its versitygw
	gw := first.gw
	storeURL := "http://" + proxy("store", gw.Addr, storeRate, 5*time.Millisecond)
	streamed := startOn(b, gw, s3store.Config{Instance: "bench-stream", Endpoint: storeURL}, receiver.Options{})
	buffered := startOn(b, gw, s3store.Config{Instance: "bench-buf", Endpoint: storeURL, Buffered: true}, receiver.Options{})
	newSender := func(name string, r *rig) *sender.Sender {
		s, err := sender.New(sender.Options{Addresses: []string{proxy("agent-"+name, r.addr, agentRate, 0)}, Extension: true, Name: name,
			Checksum: wire.ChecksumCRC32C, Terminator: wire.TermLF, AnswerTimeout: 30 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = s.Close(context.Background()) })
		return s
	}
	paths := []struct {
		s    *sender.Sender
		took time.Duration
		n    int
	}{{s: newSender("stream", streamed)}, {s: newSender("buf", buffered)}}
	payload := jpeg(1, size)
	base := time.Now().UTC()
	seq := uint64(0)
	for range b.N {
		for k := range paths {
			for i := range frames + 1 {
				seq++
				f := frame.Frame{Data: payload, Seq: seq, Time: base.Add(time.Duration(seq))}
				began := time.Now()
				if err := paths[k].s.Deliver(context.Background(), f); err != nil {
					b.Fatal(err)
				}
				if i > 0 { // the first opens the connection
					paths[k].took += time.Since(began)
					paths[k].n++
				}
			}
		}
	}
	fps := func(k int) float64 { return float64(paths[k].n) / paths[k].took.Seconds() }
	b.ReportMetric(fps(0), "stream-frames/s")
	b.ReportMetric(fps(1), "buf-frames/s")
	b.ReportMetric(float64(agentRate)/size, "agent-link-frames/s")
	b.ReportMetric(fps(0)/fps(1), "stream-x-buffered")
	if v := metricValue(b, streamed, "framerecv_store_streamed_puts_total"); v == "0" || v == "" {
		b.Fatalf("the streaming receiver streamed nothing (%q)", v)
	}
}
