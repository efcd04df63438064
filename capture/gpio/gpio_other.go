//go:build !linux

package gpio

// guardStdin is a no-op off Linux, where periph finds no GPIO chips.
func guardStdin() (restore func()) { return func() {} }
