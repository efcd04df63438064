package sender

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"framepush/internal/testutil/refuser"
	"framepush/wire"
)

// RefusedAfterPayload tells the refusals of the frame itself (counted
// towards the agent's max_attempts) from the receiver's own state and
// from link failures (never counted).
func TestRefusedAfterPayloadClassification(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer func(c net.Conn, dec *wire.Decoder) // after reading SIZE
		counts bool
	}{
		{"ERR internal after the payload", afterPayload("ERR internal store failed\n"), true},
		{"ERR checksum after the payload", afterPayload("ERR checksum sha256 mismatch\n"), true},
		{"garbage after the payload", afterPayload("WHAT?\n"), true},
		{"ERR disk-full after the payload", afterPayload("ERR disk-full\n"), false},
		{"ERR busy after the payload", afterPayload("ERR busy max=1\n"), false},
		{"ERR timeout after the payload", afterPayload("ERR timeout\n"), false},
		{"close after the payload", afterPayload(""), false},
		{"ERR busy before the payload", func(c net.Conn, _ *wire.Decoder) { io.WriteString(c, "ERR busy max=1\n") }, false},
		{"ERR too-large before the payload", func(c net.Conn, _ *wire.Decoder) { io.WriteString(c, "ERR too-large max=1\n") }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startFake(t, func(c net.Conn, _ int) {
				dec := wire.NewDecoder(c, wire.DefaultSettle)
				if _, err := dec.ReadRequest(time.Now().Add(long)); err != nil {
					return
				}
				tc.answer(c, dec)
			})
			s := newSender(t, Options{Addresses: []string{srv.addr}, Terminator: wire.TermLF, Mode: ModePersistent})
			err := sendErr(t, s, testFrame(1, 100))
			answer, ok := RefusedAfterPayload(err)
			if ok != tc.counts {
				t.Fatalf("RefusedAfterPayload(%v) = %v, want %v", err, ok, tc.counts)
			}
			if ok && answer == "" {
				t.Fatalf("no answer text for %v", err)
			}
		})
	}
	if _, ok := RefusedAfterPayload(sendErr(t, newSender(t, Options{Addresses: []string{refusedAddr(t)}}), testFrame(1, 10))); ok {
		t.Fatal("a connection failure counted as a refusal")
	}
}

// afterPayload answers GOT SIZE, reads the 100-byte payload and writes
// answer ("" closes instead).
func afterPayload(answer string) func(c net.Conn, dec *wire.Decoder) {
	return func(c net.Conn, dec *wire.Decoder) {
		io.WriteString(c, wire.GotSize)
		c.SetReadDeadline(time.Now().Add(long))
		io.ReadFull(dec, make([]byte, 100))
		if answer != "" {
			io.WriteString(c, answer)
		}
	}
}

// SendID puts the caller's id on the SIZE line.
func TestSendIDUsesTheGivenID(t *testing.T) {
	rv := refuser.Start(t, nil)
	s := newSender(t, Options{Addresses: []string{rv.Addr}, Terminator: wire.TermLF, Extension: true, Name: "cam"})
	if err := s.SendID(t.Context(), testFrame(7, 100), "k3j9x2ab0q.12-7"); err != nil {
		t.Fatal(err)
	}
	send(t, s, testFrame(8, 100))
	got := rv.Accepted()
	if len(got) != 2 || got[0].Meta.ID != "k3j9x2ab0q.12-7" || got[1].Meta.ID != "8" || !strings.HasPrefix(got[0].Meta.Name, "cam") {
		t.Fatalf("ids %+v", got)
	}
}
