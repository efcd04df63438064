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

	"framepush/frame"
	"framepush/internal/regularfile"
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
func readFrame(file string, seq uint64, maxSize int64) (frame.Frame, error) {
	data, mtime, err := readRegular(file, maxSize)
	if err != nil {
		return frame.Frame{}, err
	}
	if len(data) == 0 {
		return frame.Frame{}, fmt.Errorf("%s: empty file, not sent (the protocol cannot carry 0 bytes)", file)
	}
	return frame.Frame{Data: data, Format: formatOf(data), Seq: seq, Source: "file:" + file, Trigger: frame.Send,
		Time: mtime}, nil
}

// readRegular reads a regular file of at most maxSize bytes. Anything else
// is refused unread, naming its kind (regularfile.Open); the read stops one
// byte past maxSize, for a file that grows while it is read.
func readRegular(file string, maxSize int64) ([]byte, time.Time, error) {
	f, st, err := regularfile.Open(file)
	var nr *regularfile.NotRegularError
	if errors.As(err, &nr) {
		return nil, time.Time{}, fmt.Errorf("%s: is a %s, not a regular file: not sent (framepush send reads only regular files)", file, regularfile.Kind(nr.Mode))
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("%s: cannot read: %w", file, pathErr(err))
	}
	defer f.Close()
	if st.Size() > maxSize {
		return nil, time.Time{}, fmt.Errorf("%s: %d bytes, larger than the --max-size of %d bytes: not sent (framerecv refuses frames over its --max-frame-size, 64MiB by default)", file, st.Size(), maxSize)
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

// pathErr drops the *fs.PathError wrapper whose path the message already has.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
