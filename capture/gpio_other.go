//go:build !linux

package capture

// gpioGuardStdin is a no-op off Linux, where periph finds no GPIO chips.
func gpioGuardStdin() (restore func()) { return func() {} }
