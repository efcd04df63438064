// Package e2e holds the tests and benchmarks that span packages and
// processes: interop with the seed's Python server and client
// (testdata/seed), the built framepush and framerecv binaries talking to
// each other, fault injection with toxiproxy between the sender and the
// receiver, and the loopback throughput benchmarks against raw TCP.
//
// It has no exported API; everything lives in _test.go files.
//
//	go test -race -count=1 ./internal/e2e/
//	go test -run '^$' -bench . -benchmem ./internal/e2e/
package e2e
