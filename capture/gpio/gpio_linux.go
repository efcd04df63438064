package gpio

import (
	"log/slog"

	"golang.org/x/sys/unix"
)

// guardStdin protects descriptor 0 around periph's driver init, which
// on the Pi 5 can close it: when a chip shows up twice (gpiochip4 linking
// to gpiochip0) periph closes the duplicate and then closes its zeroed
// descriptor field, that is fd 0. A free fd 0 would then be handed to the
// next open file or line request, and periph takes fd 0 to mean "no line".
// The returned func puts /dev/null back on fd 0 if it was open before and
// is closed now.
func guardStdin() (restore func()) {
	if _, err := unix.FcntlInt(0, unix.F_GETFD, 0); err != nil {
		return func() {} // not ours to fill
	}
	return func() {
		if _, err := unix.FcntlInt(0, unix.F_GETFD, 0); err == nil {
			return
		}
		fd, err := unix.Open("/dev/null", unix.O_RDWR, 0)
		if err != nil {
			slog.Warn("gpio driver init closed standard input and /dev/null cannot be opened", "err", err)
			return
		}
		if fd != 0 {
			if err := unix.Dup3(fd, 0, 0); err != nil {
				slog.Warn("gpio driver init closed standard input; restoring it failed", "err", err)
			}
			unix.Close(fd)
		}
		slog.Warn("gpio driver init closed standard input (periph on a kernel listing a GPIO chip twice); replaced it with /dev/null")
	}
}
