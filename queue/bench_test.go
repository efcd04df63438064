package queue

import (
	"log/slog"
	"testing"
)

// BenchmarkPutNextAck measures one frame through the queue: in memory (the
// healthy-link path), and through the spool with and without fsync (the
// link-down path: write, read back and check, delete).
func BenchmarkPutNextAck(b *testing.B) {
	for _, bc := range []struct {
		name     string
		opt      Options
		linkDown bool
	}{
		{"memory", Options{}, false},
		{"spool-fsync", Options{}, true},
		{"spool-nofsync", Options{NoFsync: true}, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			o := bc.opt
			o.Logger = slog.New(slog.DiscardHandler)
			if bc.linkDown {
				o.SpoolDir = b.TempDir()
			}
			q, err := Open(o)
			if err != nil {
				b.Fatal(err)
			}
			defer q.Close()
			if bc.linkDown {
				q.SetLinkUp(false)
			}
			f := mkFrame(1, "continuous", 64<<10)
			ctx := b.Context()
			b.SetBytes(int64(len(f.Data)))
			b.ReportAllocs()
			for b.Loop() {
				if err := q.Put(f); err != nil {
					b.Fatal(err)
				}
				it, err := q.Next(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if err := q.Ack(it); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
