package sender

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"framepush/receiver"
)

// A fleet sharing one address list spreads over it by device name, each
// board always starting at the same receiver.
func TestSpreadKeyPicksFirstAddressByStableHash(t *testing.T) {
	addrs := []string{"10.0.0.1:7400", "10.0.0.2:7400", "10.0.0.3:7400"}
	count := map[string]int{}
	for i := range 300 {
		name := fmt.Sprintf("cam-%03d", i)
		s, err := New(Options{Addresses: addrs, SpreadKey: name})
		if err != nil {
			t.Fatal(err)
		}
		first := s.Stats().Address
		count[first]++
		again, _ := New(Options{Addresses: addrs, SpreadKey: name})
		if again.Stats().Address != first {
			t.Fatalf("%s starts at %s, then at %s: the choice must be stable", name, first, again.Stats().Address)
		}
		if len(s.o.Addresses) != 3 {
			t.Fatalf("%s: addresses %v lost one", name, s.o.Addresses)
		}
	}
	for _, a := range addrs {
		// 100 each on average; a hash that ignores the name gives 0 or 300.
		if count[a] < 60 {
			t.Errorf("address %s is first for %d of 300 boards: not spread (%v)", a, count[a], count)
		}
	}
	s, _ := New(Options{Addresses: addrs})
	if s.Stats().Address != addrs[0] {
		t.Errorf("without SpreadKey the first address must be tried first, got %s", s.Stats().Address)
	}
}

// Spreading keeps failover: a board whose hashed receiver is down delivers
// to the next one.
func TestSpreadKeyKeepsFailover(t *testing.T) {
	r := startReceiver(t, receiver.Options{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	addrs := []string{dead, r.Addr}
	// Find a name whose first address is the dead one.
	name := ""
	for i := 0; name == ""; i++ {
		n := fmt.Sprintf("cam-%d", i)
		s, _ := New(Options{Addresses: addrs, SpreadKey: n})
		if s.Stats().Address == dead {
			name = n
		}
	}
	s, err := New(Options{Addresses: addrs, SpreadKey: name, Extension: true, Name: name, ConnectTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	f := testFrame(1, 1000)
	if err := s.Deliver(ctx, f); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	_ = s.Close(ctx)
	if got := r.Frames(); len(got) != 1 || got[0].Meta.Name != name {
		t.Fatalf("frame did not fail over to %s: %+v", r.Addr, got)
	}
}
