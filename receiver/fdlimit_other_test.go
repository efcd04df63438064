//go:build !unix

package receiver

// fdLimit is unknown here; the flood test assumes a generous limit.
func fdLimit() uint64 { return 8192 }
