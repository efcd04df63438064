package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"framepush/agent"
	"framepush/config"
	"framepush/queue"
	"framepush/sender"
)

const deadUsage = `Usage:
  framepush deadletters list   [--config FILE] [--set key=value]...
  framepush deadletters resend [--config FILE] [--set key=value]... [--retry-for D] [ID|FILE...]

A frame the receiver refused after its whole payload (ERR checksum, ERR
internal, ...; not busy or disk-full, which are about the receiver) is retried
up to queue.max_attempts times (default 5), then moved out of the way into the
dead-letter folder <queue.spool_dir>/dead/, so that the frames behind it are
delivered. Nothing in that folder is sent again on its own. Without a
queue.spool_dir such a frame is dropped and counted as "dead-letter".

  list     prints each frame there: id, capture time, size, refusals counted,
           and the receiver's last answer.
  resend   delivers them (all, or the ones named by id or file name) to the
           configured server, in capture order, with their original id; each
           one the receiver acknowledges with GOT IMAGE is removed from the
           folder. It prints one line per frame and exits 0 when every one was
           delivered, 1 otherwise. It can run while the agent runs.

The configuration is read as by "framepush run" (FILE, FRAMEPUSH_* variables,
--set), for queue.spool_dir and the server settings.

Metrics of the agent: framepush_dead_letters_total (frames moved there),
framepush_dead_letter_frames (frames there now).

Examples:
  framepush deadletters list --config /etc/framepush/framepush.yaml
  #   ID                 CAPTURED                  BYTES  ATTEMPTS  LAST REFUSAL
  #   k3j9x2ab0q.7-1234  2026-05-01T12:00:01.5Z    48213  5         ERR internal cannot store
  framepush deadletters resend --config /etc/framepush/framepush.yaml            # all of them
  framepush deadletters resend --config /etc/framepush/framepush.yaml k3j9x2ab0q.7-1234

Flags:
`

func runDeadLetters(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "list" && args[0] != "resend") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(stdout, deadUsage)
			fs, _, _, _ := deadFlagSet(stdout)
			fs.PrintDefaults()
			return 0
		}
		fmt.Fprintf(stderr, "framepush deadletters: want list or resend\nRun \"framepush deadletters --help\" for usage and examples.\n")
		return 2
	}
	sub := args[0]
	fs, file, sets, retryFor := deadFlagSet(stderr)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, deadUsage)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return 0
		}
		fmt.Fprintln(stderr, `Run "framepush deadletters --help" for usage and examples.`)
		return 2
	}
	if sub == "list" && fs.NArg() > 0 {
		fmt.Fprintf(stderr, "framepush deadletters list: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	l, err := config.Load(*file, os.Environ(), *sets)
	if err != nil {
		fmt.Fprintf(stderr, "framepush: configuration not valid:\n%v\n", err)
		return 2
	}
	dir := l.Queue.SpoolDir
	if dir == "" {
		fmt.Fprintln(stderr, "framepush deadletters: queue.spool_dir is not set, so there is no dead-letter folder "+
			"(frames refused too often were dropped, counted as dead-letter); give the agent's --config or --set queue.spool_dir=DIR")
		return 2
	}
	dls, err := queue.ListDeadLetters(dir)
	if err != nil {
		fmt.Fprintf(stderr, "framepush deadletters: %v\n", err)
		return 1
	}
	if sub == "list" {
		if len(dls) == 0 {
			fmt.Fprintf(stdout, "no dead letters in %s\n", filepath.Join(dir, queue.DeadDir))
			return 0
		}
		tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tCAPTURED\tBYTES\tATTEMPTS\tLAST REFUSAL\tFILE")
		for _, d := range dls {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", orDash(d.ID), d.Captured.UTC().Format(time.RFC3339Nano),
				d.Bytes, d.Attempts, orDash(d.LastRefusal), d.File)
		}
		tw.Flush()
		return 0
	}
	return resendDead(ctx, l.Config, dir, dls, fs.Args(), *retryFor, stdout, stderr)
}

func deadFlagSet(w io.Writer) (*flag.FlagSet, *string, *multiFlag, *time.Duration) {
	fs := flag.NewFlagSet("framepush deadletters", flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {}
	file := fs.String("config", os.Getenv("FRAMEPUSH_CONFIG"), "the agent's YAML configuration `FILE` (default $FRAMEPUSH_CONFIG)")
	sets := &multiFlag{}
	fs.Var(sets, "set", "override one setting, `key.path=value` (repeatable), e.g. queue.spool_dir=/var/lib/framepush/spool")
	retryFor := fs.Duration("retry-for", 20*time.Second, "resend: keep retrying a frame the server cannot be reached for, up to `DURATION`")
	return fs, file, sets, retryFor
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// resendDead delivers the chosen dead letters and removes each one the
// receiver acknowledged; it returns the exit status.
func resendDead(ctx context.Context, cfg config.Config, dir string, dls []queue.DeadLetter, want []string,
	retryFor time.Duration, stdout, stderr io.Writer) int {
	chosen := dls
	if len(want) > 0 {
		chosen = nil
		found := map[string]bool{}
		for _, d := range dls {
			for _, w := range want {
				if w == d.ID || w == d.File {
					chosen = append(chosen, d)
					found[w] = true
					break
				}
			}
		}
		missing := 0
		for _, w := range want {
			if !found[w] {
				fmt.Fprintf(stderr, "framepush deadletters: %s: no such dead letter in %s\n", w, filepath.Join(dir, queue.DeadDir))
				missing++
			}
		}
		if missing > 0 && len(chosen) == 0 {
			return 1
		}
	}
	if len(chosen) == 0 {
		fmt.Fprintf(stdout, "no dead letters in %s\n", filepath.Join(dir, queue.DeadDir))
		return 0
	}
	so, err := agent.SenderOptions(cfg.Server, cfg.Name, slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Fprintf(stderr, "framepush deadletters: %v\n", err)
		return 2
	}
	s, err := sender.New(so)
	if err != nil {
		fmt.Fprintf(stderr, "framepush deadletters: %v\n", err)
		return 2
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.Close(cctx)
		cancel()
	}()
	failed := len(want) - len(chosen)
	for _, d := range chosen {
		name := orDash(d.ID) + " (" + d.File + ")"
		f, err := queue.ReadDeadLetter(dir, d.File)
		if err != nil {
			fmt.Fprintf(stderr, "framepush deadletters: %s: cannot read: %v\n", name, err)
			failed++
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, retryFor)
		err = s.SendID(rctx, f, d.ID)
		for err != nil && rctx.Err() == nil && !sender.IsPermanent(err) {
			if _, refused := sender.RefusedAfterPayload(err); refused {
				break // the receiver still refuses this frame: do not hammer it
			}
			err = s.SendID(rctx, f, d.ID)
		}
		cancel()
		if err != nil {
			fmt.Fprintf(stderr, "framepush deadletters: %s: not delivered, kept: %v\n", name, err)
			failed++
			if ctx.Err() != nil {
				return 1
			}
			continue
		}
		if err := queue.RemoveDeadLetter(dir, d.File); err != nil {
			fmt.Fprintf(stderr, "framepush deadletters: %s: delivered, but cannot remove it (it would be sent again): %v\n", name, err)
			failed++
			continue
		}
		fmt.Fprintf(stdout, "resent %s (%d bytes) to %s, removed from the dead-letter folder\n", name, len(f.Data), s.Stats().Address)
	}
	if failed > 0 {
		fmt.Fprintf(stderr, "framepush deadletters: %d of %d not delivered\n", failed, max(len(want), len(chosen)))
		return 1
	}
	return 0
}
