package mqtt

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"framepush/internal/testutil/mqtttest"
	"framepush/internal/testutil/pushtest"
	"framepush/notify"
	"framepush/receiver"
)

// BenchmarkDeliveryWithMQTT measures frame delivery over loopback (one
// persistent client, 64 KiB frames, no fsync) with a Publisher attached to
// a real mosquitto that is up, hung (SIGSTOP) or gone, against the same
// receiver without MQTT measured in the same run (x-reference). A hung or
// gone broker must cost delivery nothing: its events are dropped and
// counted (dropped/op).
//
//	go test -run '^$' -bench DeliveryWithMQTT -benchmem ./notify/mqtt
func BenchmarkDeliveryWithMQTT(b *testing.B) {
	var ref float64
	b.Run("reference-no-mqtt", func(b *testing.B) { ref = benchMQTT(b, "") })
	for _, broker := range []string{"up", "hung", "gone"} {
		b.Run("broker="+broker, func(b *testing.B) {
			fps := benchMQTT(b, broker)
			if ref > 0 {
				b.ReportMetric(fps/ref, "x-reference")
			}
		})
	}
}

func benchMQTT(b *testing.B, broker string) float64 {
	remove := make(chan string, 4096)
	go func() {
		for p := range remove {
			os.Remove(p)
		}
	}()
	defer close(remove)
	var pub *Publisher
	if broker != "" {
		m := mqtttest.Start(b)
		var err error
		pub, err = New(Options{Broker: m.URL, ClientID: "framerecv-bench", Discovery: true})
		if err != nil {
			b.Fatal(err)
		}
		defer pub.Close()
		// Wait for the connection, so that "up" measures publishing.
		for i := 0; !pub.client.IsConnectionOpen(); i++ {
			if i > 2000 {
				b.Fatal("no connection to the broker after 20 s")
			}
			time.Sleep(10 * time.Millisecond)
		}
		switch broker {
		case "hung":
			m.Freeze()
		case "gone":
			m.Kill()
		}
	}
	opt := receiver.Options{Dir: b.TempDir(), NoFsync: true, MinFreeBytes: -1, Logger: slog.New(slog.DiscardHandler), KeepData: 8 << 20}
	opt.OnFrame = func(s receiver.Stored) {
		if pub != nil {
			pub.Notify(notify.FromStored(s))
		}
		remove <- s.Path
	}
	srv, err := receiver.New(opt)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(ln)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	frame := make([]byte, 64<<10)
	copy(frame, "\xff\xd8\xff")
	p := pushtest.Dial(b, ln.Addr().String())
	b.SetBytes(int64(len(frame)))
	b.ResetTimer()
	began := time.Now()
	for i := range b.N {
		p.MustSend("cam", fmt.Sprintf("r-%d", i+1), frame)
	}
	fps := float64(b.N) / time.Since(began).Seconds()
	b.StopTimer()
	b.ReportMetric(fps, "frames/s")
	if pub != nil {
		b.ReportMetric(float64(pub.Dropped(DropQueueFull)+pub.Dropped(DropDisconnected)+pub.Dropped(DropPublishError))/float64(b.N), "dropped/op")
	}
	return fps
}
