package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"framepush/capture"
)

// defaultSendMaxSize is framerecv's default --max-frame-size (64 MiB): a
// larger file would be refused after its SIZE line anyway.
const defaultSendMaxSize = 64 << 20

// sendSignalContext ends the context on the first SIGINT or SIGTERM, saying
// so on stderr, and gives the signals back their default action, so that a
// second one ends the process at once whatever it is waiting for. The
// returned stop releases the signals.
func sendSignalContext(stderr io.Writer) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-sigs:
			signal.Stop(sigs) // no channel left: the default action again
			fmt.Fprintf(stderr, "framepush send: %v: stopping (send it again to quit at once)\n", sig)
			cancel()
		case <-done:
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() { signal.Stop(sigs); close(done); cancel() })
	}
}

// readFrame loads file as frame seq: its bytes, its format from the magic
// bytes and its modification time as the capture time. Only a regular file
// of 1 to maxSize bytes is read (see readRegular).
func readFrame(file string, seq uint64, maxSize int64) (capture.Frame, error) {
	data, mtime, err := readRegular(file, maxSize)
	if err != nil {
		return capture.Frame{}, err
	}
	if len(data) == 0 {
		return capture.Frame{}, fmt.Errorf("%s: empty file, not sent (the protocol cannot carry 0 bytes)", file)
	}
	return capture.Frame{Data: data, Format: formatOf(data), Seq: seq, Source: "file:" + file, Trigger: "send",
		Time: mtime}, nil
}

// readRegular reads a regular file of at most maxSize bytes. Anything else
// is refused before it is opened, naming its kind: opening a FIFO blocks
// until a writer comes (forever, deaf to signals), and /dev/zero or a
// growing file never end. The open is non-blocking and the kind checked
// again on the open file, in case a FIFO was swapped in after the first
// look; the read stops one byte past maxSize.
func readRegular(file string, maxSize int64) ([]byte, time.Time, error) {
	st, err := os.Stat(file)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("%s: cannot read: %w", file, pathErr(err))
	}
	if err := checkRegular(file, st, maxSize); err != nil {
		return nil, time.Time{}, err
	}
	f, err := os.OpenFile(file, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("%s: cannot read: %w", file, pathErr(err))
	}
	defer f.Close()
	if st, err = f.Stat(); err != nil {
		return nil, time.Time{}, fmt.Errorf("%s: cannot read: %w", file, pathErr(err))
	}
	if err := checkRegular(file, st, maxSize); err != nil {
		return nil, time.Time{}, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSize+1))
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("%s: cannot read: %w", file, pathErr(err))
	}
	if int64(len(data)) > maxSize {
		return nil, time.Time{}, fmt.Errorf("%s: grew larger than the --max-size of %d bytes while being read, not sent", file, maxSize)
	}
	return data, st.ModTime(), nil
}

func checkRegular(file string, st fs.FileInfo, maxSize int64) error {
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s: is a %s, not a regular file: not sent (framepush send reads only regular files)", file, fileKind(st.Mode()))
	}
	if st.Size() > maxSize {
		return fmt.Errorf("%s: %d bytes, larger than the --max-size of %d bytes: not sent (framerecv refuses frames over its --max-frame-size, 64MiB by default)", file, st.Size(), maxSize)
	}
	return nil
}

// fileKind names a non-regular file type for an error message.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe (FIFO)"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m&fs.ModeSocket != 0:
		return "socket"
	}
	return "special file (" + m.Type().String() + ")"
}

// pathErr drops the *fs.PathError wrapper whose path the message already has.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
