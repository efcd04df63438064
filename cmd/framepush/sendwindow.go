package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"framepush/frame"
	"framepush/sender"
)

// sendFilesWindowed is sendFiles with a pipelining window: files are
// written back to back, up to the window, and their answers read as they
// come. The outcome of each file is the same as with sendFiles: printed
// in order; a file refused for good is not retried; one that failed is
// retried (from the oldest unanswered file on, in order) for up to
// retryFor, after which the remaining files are not tried; one refused
// after its payload sendRefusals times fails alone and the others go on.
func sendFilesWindowed(ctx context.Context, s *sender.Sender, files []string, retryFor time.Duration, maxSize int64, stdout, stderr io.Writer) int {
	type job struct {
		i         int
		fr        frame.Frame
		start     time.Time
		firstFail time.Time // zero until its first failed attempt
		refusals  int       // refusals after its payload (sendRefusals ends it)
	}
	var (
		failed int
		back   []*job // failed or unanswered, in order, to go again first
		fresh  []*job // the same, reported by the current call (older than back)
		giveUp bool
	)
	done := func(o sender.Outcome) {
		j := o.Tag.(*job)
		switch err := o.Err; {
		case err == nil:
			fmt.Fprintf(stdout, "sent %s (%d bytes) to %s in %v\n", files[j.i], len(j.fr.Data), s.Stats().Address, roundDuration(time.Since(j.start)))
		case sender.IsPermanent(err):
			fmt.Fprintf(stderr, "framepush send: %s: refused, not retried: %v\n", files[j.i], err)
			failed++
		case giveUp:
			failed++
		case sender.IsUnanswered(err) && ctx.Err() == nil:
			fresh = append(fresh, j)
		default:
			if _, ok := sender.RefusedAfterPayload(err); ok {
				j.refusals++
			}
			switch {
			case ctx.Err() == nil && j.refusals > 0 && (j.refusals >= sendRefusals || retryFor <= 0):
				// Refused for itself: this file fails, the others go on.
				fmt.Fprintf(stderr, "framepush send: %s: refused after its payload %d times, not delivered: %v\n", files[j.i], j.refusals, err)
				failed++
				return
			case ctx.Err() == nil && retryFor > 0 && (j.firstFail.IsZero() || time.Since(j.firstFail) < retryFor):
				if j.firstFail.IsZero() {
					j.firstFail = time.Now()
					fmt.Fprintf(stderr, "framepush send: %s: %v; retrying for up to %v\n", files[j.i], err, retryFor)
				}
				fresh = append(fresh, j)
				return
			case ctx.Err() == nil && j.refusals > 0:
				fmt.Fprintf(stderr, "framepush send: %s: refused after its payload %d times, not delivered: %v (gave up after %v)\n", files[j.i], j.refusals, err, retryFor)
				failed++
				return
			}
			fmt.Fprintf(stderr, "framepush send: %s: not delivered: %v\n", files[j.i], err)
			failed++
			giveUp = true
		}
	}
	settled := func() {
		back = append(fresh, back...)
		fresh = nil
	}
	next := 0
	for !giveUp && ctx.Err() == nil && (len(back) > 0 || next < len(files)) {
		for !giveUp && ctx.Err() == nil && (len(back) > 0 || next < len(files)) {
			var j *job
			if len(back) > 0 {
				j, back = back[0], back[1:]
			} else {
				fr, err := readFrame(files[next], uint64(next+1), maxSize)
				if err != nil {
					fmt.Fprintf(stderr, "framepush send: %v\n", err)
					failed++
					next++
					continue
				}
				j = &job{i: next, fr: fr, start: time.Now()}
				next++
			}
			s.Submit(ctx, j.fr, j, done)
			settled()
		}
		s.Flush(ctx, done)
		settled()
	}
	rest := len(back) + len(files) - next
	if rest > 0 {
		why := "giving up"
		if ctx.Err() != nil {
			why = "interrupted"
		}
		fmt.Fprintf(stderr, "framepush send: %s: %d remaining files not sent\n", why, rest)
	}
	return failed + rest
}
