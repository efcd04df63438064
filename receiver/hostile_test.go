package receiver

import (
	"bytes"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"framepush/wire"
)

// goodClient sends frames on one persistent connection under name=good
// until stop is closed, and reports how many were acknowledged.
func goodClient(t *testing.T, ts *testServer, stop <-chan struct{}) <-chan int {
	out := make(chan int, 1)
	c := ts.dial(t)
	go func() {
		ar := wire.NewAnswerReader(c)
		n := 0
		defer func() { out <- n }()
		for {
			select {
			case <-stop:
				c.Write([]byte(wire.Bye))
				return
			default:
			}
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			p := payload(2000+n%5000, jpegMagic, byte(n))
			if err := sendFrame(c, ar, p, &wire.Meta{Name: "good"}, wire.TermLF); err != nil {
				t.Errorf("good client, frame %d: %v", n, err)
				return
			}
			n++
		}
	}()
	return out
}

// The hostile-input table from the issue. Each case must get its ERR
// answer (or none when the peer is gone), a closed connection, a log line
// with the reason and the quoted bytes, and a counted reason, while a good
// client keeps being served and no file of the hostile peer appears.
func TestHostileInputs(t *testing.T) {
	ts := startServer(t, Options{
		HandshakeTimeout: 400 * time.Millisecond,
		MinRate:          1 << 20, // 64 KiB chunks due within 62 ms + 400 ms grace
		Settle:           30 * time.Millisecond,
	})
	stop := make(chan struct{})
	goodDone := goodClient(t, ts, stop)

	type tc struct {
		name   string
		run    func(t *testing.T, c net.Conn) // sends the hostile input
		answer string                         // regexp for everything the server sends; "" = nothing
		reason string
		bytes  string // the quoted bytes the log must show; "-" = no bytes attribute
	}
	send := func(s string) func(*testing.T, net.Conn) {
		return func(t *testing.T, c net.Conn) { mustWrite(t, c, s) }
	}
	cases := []tc{
		{"negative size", send("SIZE -1"), `^ERR bad-size SIZE is not a positive decimal number: "SIZE -1"\n$`, wire.ReasonBadSize, `"SIZE -1"`},
		{"zero size", send("SIZE 0"), `^ERR bad-size SIZE must be at least 1: "SIZE 0"\n$`, wire.ReasonBadSize, `"SIZE 0"`},
		{"letters", send("SIZE abc"), `^ERR bad-size .*"SIZE abc"\n$`, wire.ReasonBadSize, `"SIZE abc"`},
		{"over the limit", send("SIZE 67108865\n"), `^ERR too-large max=67108864\n$`, wire.ReasonTooLarge, "-"},
		{"twenty digits", send("SIZE 99999999999999999999"), `^ERR bad-size SIZE has too many digits: "SIZE 99999999999999999999"\n$`, wire.ReasonBadSize, `"SIZE 99999999999999999999"`},
		{"garbage before SIZE", send("xxSIZE 5\nhello"), `^ERR protocol expected SIZE or BYE: "xxSIZE 5\\nhello"\n$`, wire.ReasonProtocol, `"xxSIZE 5\nhello"`},
		{"http request", send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), `^ERR protocol expected SIZE or BYE: "GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n"\n$`, wire.ReasonProtocol, `"GET / HTTP/1.1\r\nHost: x\r\n\r\n"`},
		{"binary garbage", send("\x00\xff\x16\x03\x01"), `^ERR protocol expected SIZE or BYE: "\\x00\\xff\\x16\\x03\\x01"\n$`, wire.ReasonProtocol, `"\x00\xff\x16\x03\x01"`},
		{"bytes after BYE", send("BYE BYE and more"), `^ERR protocol bytes after BYE BYE: "and more"\n$`, wire.ReasonProtocol, `"and more"`},
		{"bad name", send("SIZE 5 name=../etc\n"), `^ERR bad-meta bad name .*\n$`, wire.ReasonBadMeta, `"name=../etc"`},
		{"over-long line", send("SIZE 5 " + strings.Repeat("k=v ", 400)), `^ERR protocol .*longer than 1024 bytes.*\n$`, wire.ReasonProtocol, ""},
		{"SIZE then silence", send("SIZ"), `^ERR timeout no complete request within 400ms\n$`, wire.ReasonTimeout, `"SIZ"`},
		{"connect and say nothing", func(*testing.T, net.Conn) {}, `^ERR timeout no complete request within 400ms\n$`, wire.ReasonTimeout, `""`},
		{"SIZE then disconnect", func(t *testing.T, c net.Conn) {
			mustWrite(t, c, "SIZE 1000\n")
			if got := readN(t, c, 8); got != wire.GotSize {
				t.Fatalf("answer %q", got)
			}
			c.(*net.TCPConn).CloseWrite()
		}, `^$`, ReasonDisconnect, "-"},
		{"half the bytes then stall", func(t *testing.T, c net.Conn) {
			mustWrite(t, c, "SIZE 200000\n")
			if got := readN(t, c, 8); got != wire.GotSize {
				t.Fatalf("answer %q", got)
			}
			mustWrite(t, c, strings.Repeat("h", 100000))
		}, `^ERR timeout payload slower than 1048576 B/s: 100000 of 200000 bytes\n$`, wire.ReasonTimeout, "-"},
		{"partial SIZE then disconnect", func(t *testing.T, c net.Conn) {
			mustWrite(t, c, "SIZE 12")
			c.(*net.TCPConn).CloseWrite()
		}, `^$`, ReasonDisconnect, `"SIZE 12"`},
	}
	for _, k := range cases {
		t.Run(k.name, func(t *testing.T) {
			before := ts.Stats().Rejects[k.reason]
			c := ts.dial(t)
			k.run(t, c)
			got := readAll(t, c)
			if k.answer != "" && !regexp.MustCompile(k.answer).MatchString(got) {
				t.Fatalf("server sent %q, want %s", got, k.answer)
			}
			rec := ts.logs.forPeer(t, c.LocalAddr().String())
			if rec.Attrs["reason"] != k.reason {
				t.Fatalf("log %q %v: reason %q, want %q", rec.Msg, rec.Attrs, rec.Attrs["reason"], k.reason)
			}
			switch q, ok := rec.Attrs["bytes"]; {
			case k.bytes == "-" && ok:
				t.Errorf("log quotes bytes %s, want none", q)
			case k.bytes != "-" && k.bytes != "" && q != wire.Quote([]byte(k.bytes[1:len(k.bytes)-1])) && q != k.bytes:
				t.Errorf("log quotes %s, want %s", q, k.bytes)
			case k.bytes == "" && !ok:
				t.Errorf("log quotes no bytes")
			}
			if after := ts.Stats().Rejects[k.reason]; after != before+1 {
				t.Fatalf("rejects[%s] went from %d to %d, want +1", k.reason, before, after)
			}
			finals, temps := listFiles(t, ts.dir)
			for _, f := range finals {
				if !strings.HasPrefix(f, "good"+string(filepath.Separator)) {
					t.Fatalf("hostile input left file %s", f)
				}
			}
			// Only the good client may have a frame in flight. The listing
			// is not atomic: it can see one frame's temporary name and,
			// after that frame was renamed, the next one's, hence up to two.
			good := 0
			for _, f := range temps {
				if !strings.HasPrefix(f, "good"+string(filepath.Separator)) {
					t.Fatalf("hostile input left temporary file %s", f)
				}
				good++
			}
			if good > 2 {
				t.Fatalf("temporary files %v", temps)
			}
		})
	}
	close(stop)
	n := <-goodDone
	if n == 0 {
		t.Fatal("the good client was not served during the hostile inputs")
	}
	waitFrames(t, ts, uint64(n))
	finals, _ := listFiles(t, ts.dir)
	if len(finals) != n {
		t.Fatalf("good client: %d frames acknowledged, %d files", n, len(finals))
	}
}

// Thousands of idle connections against a small MaxConns: the ones over
// the limit are refused with ERR busy, the others time out with
// ERR timeout, the server never holds more than MaxConns, and a good
// client is served as soon as a slot frees.
func TestIdleConnectionFlood(t *testing.T) {
	// Each connection costs two descriptors in this process (client and,
	// briefly, server side); keep well inside the limit.
	limit := fdLimit()
	n := min(2000, int(limit)/2-100)
	if n < 200 {
		t.Skipf("RLIMIT_NOFILE %d is too low for a connection flood", limit)
	}
	const maxConns = 8
	ts := startServer(t, Options{MaxConns: maxConns, HandshakeTimeout: 500 * time.Millisecond})

	var mu sync.Mutex
	answers := map[string]int{}
	var wg sync.WaitGroup
	for i := range n {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		if a := ts.Stats().ActiveConns; a > maxConns {
			t.Fatalf("%d active connections, MaxConns %d", a, maxConns)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(60 * time.Second))
			var buf bytes.Buffer
			_, err := buf.ReadFrom(c)
			if err != nil && !isReset(err) {
				t.Errorf("reading answer: %v", err)
			}
			mu.Lock()
			answers[buf.String()]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	busy := answers[fmt.Sprintf("ERR busy max=%d\n", maxConns)]
	timeout := answers["ERR timeout no complete request within 500ms\n"]
	if busy+timeout != n || timeout < 1 || busy < 1 {
		t.Fatalf("answers %v: want every one of %d connections refused with ERR busy or ERR timeout", answers, n)
	}
	st := ts.Stats()
	if st.Rejects[wire.ReasonBusy] != uint64(busy) || st.Rejects[wire.ReasonTimeout] != uint64(timeout) {
		t.Fatalf("counted %v, answered busy %d timeout %d", st.Rejects, busy, timeout)
	}
	ts.logs.wait(t, "about busy refusals", func(r logRecord) bool {
		return r.Attrs["reason"] == wire.ReasonBusy && r.Attrs["max_conns"] == "8" && strings.Contains(r.Msg, "too many connections")
	})
	waitActive(t, ts, 0)

	c := ts.dial(t)
	if err := sendFrame(c, wire.NewAnswerReader(c), []byte("after the flood"), nil, wire.TermLF); err != nil {
		t.Fatalf("good client after the flood: %v", err)
	}
	if finals, temps := listFiles(t, ts.dir); len(finals) != 1 || len(temps) != 0 {
		t.Fatalf("files %v temps %v", finals, temps)
	}
}

// Hostile clients announcing 60 MiB frames and then vanishing or stalling
// cost no memory in proportion to what they announce.
func TestMemoryBoundedUnderHostileSizes(t *testing.T) {
	ts := startServer(t, Options{HandshakeTimeout: 300 * time.Millisecond, MinRate: 1 << 20, MinFreeBytes: -1, NoFsync: true})
	const conns, batch = 120, 20
	announce := fmt.Sprintf("SIZE %d\n", 60<<20)
	junk := bytes.Repeat([]byte("j"), 1000)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for b := 0; b < conns/batch; b++ {
		var wg sync.WaitGroup
		for i := range batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.Dial("tcp", ts.addr)
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
				if _, err := c.Write([]byte(announce)); err != nil {
					t.Error(err)
					return
				}
				ans := make([]byte, 8)
				if _, err := c.Read(ans); err != nil || string(ans) != wire.GotSize {
					t.Errorf("answer %q %v", ans, err)
					return
				}
				c.Write(junk)
				if i%2 == 0 {
					return // vanish mid-frame
				}
				buf := make([]byte, 256) // stall until the rate guard fires
				n, _ := c.Read(buf)
				if !strings.HasPrefix(string(buf[:n]), "ERR timeout payload slower") {
					t.Errorf("stalled client got %q", buf[:n])
				}
			}()
		}
		wg.Wait()
	}
	waitFor(t, "all hostile connections to be refused", func() bool {
		st := ts.Stats()
		return st.Rejects[ReasonDisconnect]+st.Rejects[wire.ReasonTimeout] == conns
	})
	waitActive(t, ts, 0)
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	total := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d connections announcing 60 MiB each: heap growth %d KiB, allocated in total %d KiB", conns, growth>>10, total>>10)
	if growth > 4<<20 {
		t.Errorf("heap grew by %d bytes", growth)
	}
	// One allocation the size of a single announced frame would exceed this.
	if total > 40<<20 {
		t.Errorf("allocated %d bytes in total for %d hostile connections", total, conns)
	}
	if finals, temps := listFiles(t, ts.dir); len(finals)+len(temps) != 0 {
		t.Fatalf("files %v temps %v", finals, temps)
	}
}
