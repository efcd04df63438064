package receiver

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// FuzzServeConn feeds arbitrary bytes to a connection, written in chunks
// of 1 to 64 bytes, and checks that the server neither panics nor hangs,
// leaves no temporary file, and stores only frames that are whole: each
// final file has the size reported for it and is a contiguous piece of
// what the client sent. The seed corpus is in testdata/fuzz/FuzzServeConn.
func FuzzServeConn(f *testing.F) {
	for _, s := range []string{
		"SIZE 5\nhelloBYE BYE ",
		"SIZE 5hello",
		"SIZE 3\nabcSIZE 2\r\ndeSIZE 1 name=x\nzBYE BYE trailing",
		"SIZE 4 sha256=88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589\nabcd",
		"SIZE 4 crc32c=00000000\nabcd",
		"SIZE 10\nshort",
		"SIZE -1", "SIZE 0\n", "SIZE 99999999999999999999\n", "\xff\xd8garbage",
		"SIZE 2000000\n", "BYE", "\r\n\r\nSIZE\t2\nokBYE BYE ",
	} {
		f.Add([]byte(s), uint8(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		if len(data) > 1<<16 {
			return
		}
		dir := t.TempDir()
		var mu sync.Mutex
		sizes := map[string]int64{}
		s, err := New(Options{
			Dir: dir, NoFsync: true, MinFreeBytes: -1, MaxFrameSize: 1 << 20,
			Settle: 2 * time.Millisecond, HandshakeTimeout: 2 * time.Second, MinRate: 1 << 20,
			OnFrame: func(st Stored) { mu.Lock(); sizes[st.Path] = st.Size; mu.Unlock() },
		})
		if err != nil {
			t.Fatal(err)
		}
		client, server := net.Pipe()
		s.active.Add(1)
		c, ok := s.track(server)
		if !ok {
			t.Fatal("track failed")
		}
		served := make(chan struct{})
		go func() { c.serve(); close(served) }()
		go func() { _, _ = io.Copy(io.Discard, client) }()
		_ = client.SetWriteDeadline(time.Now().Add(10 * time.Second))
		chunk := 1 + int(step)%64
		for rest := data; len(rest) > 0; {
			n := min(chunk, len(rest))
			if _, err := client.Write(rest[:n]); err != nil {
				break // the server closed: it refused something
			}
			rest = rest[n:]
		}
		client.Close()
		select {
		case <-served:
		case <-time.After(30 * time.Second):
			t.Fatal("server did not finish the connection")
		}

		finals, temps := listFiles(t, dir)
		if len(temps) != 0 {
			t.Fatalf("temporary files left: %v", temps)
		}
		if uint64(len(finals)) != s.Stats().Frames || len(finals) != len(sizes) {
			t.Fatalf("%d files, %d frames counted, %d reported", len(finals), s.Stats().Frames, len(sizes))
		}
		for _, rel := range finals {
			path := filepath.Join(dir, rel)
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(got)) != sizes[path] || len(got) == 0 {
				t.Fatalf("%s holds %d bytes, reported %d", rel, len(got), sizes[path])
			}
			if !bytes.Contains(data, got) {
				t.Fatalf("%s holds bytes the client never sent in that order", rel)
			}
		}
	})
}
