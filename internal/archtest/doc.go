// Package archtest holds the test that keeps the import rules of
// docs/ARCHITECTURE.md true: it asks `go list -deps` what each package
// links and fails on any dependency a rule forbids. It has no code of its
// own.
package archtest
