package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"framepush/agent"
	"framepush/capture"
	"framepush/config"
	"framepush/internal/logging"
	"framepush/internal/version"
)

const runUsage = `Usage: framepush run [--config FILE] [--set key.path=value]...

Runs the agent: captures frames on the configured trigger, queues them (RAM,
then the on-disk spool while the link is down) and pushes each one to the
receiver, which must answer GOT IMAGE before the frame leaves the queue.

With no --config, the built-in defaults run: the test pattern at 1 frame/s
to a receiver at 127.0.0.1:7400 (start one with: framerecv --dir ./frames).
Settings come from, lowest first: defaults, FILE, FRAMEPUSH_* variables,
--set flags. "framepush config example" prints every setting, explained.

Signals:
  SIGTERM, SIGINT  stop: capture stops, queued frames are delivered for up to
                   shutdown.timeout, the rest is spooled (if queue.spool_dir
                   is set), BYE BYE, exit 0
  SIGHUP           reload the configuration (source, trigger and server
                   settings; queue, http and log need a restart)
  SIGUSR1          capture now, when trigger.type is signal or trigger.signal
                   is true

Exit status: 0 after an orderly stop, 1 on a runtime failure (the camera
stayed away longer than source.reopen.give_up, the GPIO line or the HTTP
port could not be opened), 2 on a bad command line or configuration.

Examples:
  framepush run --config /etc/framepush/framepush.yaml
  framepush run --set trigger.fps=5 --set server.addresses=10.0.0.5:7400
  framepush run --set source.type=v4l2 --set source.device=/dev/v4l/by-id/usb-Cam-video-index0 \
                --set queue.spool_dir=/var/lib/framepush/spool
  framepush run --set log.level=debug          # one line per delivered frame

Flags:
`

func runAgent(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("framepush run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", os.Getenv("FRAMEPUSH_CONFIG"), "YAML configuration `FILE` (default $FRAMEPUSH_CONFIG, else the built-in defaults)")
	var sets multiFlag
	fs.Var(&sets, "set", "override one setting, `key.path=value` (repeatable), e.g. trigger.fps=5")
	fs.Usage = func() {
		fmt.Fprint(stderr, runUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "framepush run: unexpected argument %q (settings go in --config FILE or --set key=value)\n", fs.Arg(0))
		return 2
	}
	load := func() (*config.Loaded, error) { return config.Load(*file, os.Environ(), sets) }
	l, err := load()
	if err != nil {
		fmt.Fprintf(stderr, "framepush: configuration not valid:\n%v\n", err)
		return 2
	}
	log, err := logging.New(stderr, l.Log.Format, l.Log.Level)
	if err != nil {
		fmt.Fprintf(stderr, "framepush: %v\n", err)
		return 2
	}
	// Libraries that log to the default logger (periph's driver
	// initialisation failures, through capture) come out the same way.
	slog.SetDefault(log)
	from := "built-in defaults"
	if *file != "" {
		from = *file
	}
	log.Info("starting", "version", version.Version, "config", from, "pid", os.Getpid())

	a, err := agent.New(l.Config, agent.Options{Logger: log, Reload: load, GovernMemory: true})
	if errors.Is(err, agent.ErrConfig) {
		// config.Load should have refused it; say it the same way, exit 2.
		fmt.Fprintf(stderr, "framepush: configuration not valid:\n%v\n", err)
		return 2
	}
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{}, 1)
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			default:
			}
		}
	}()
	// SIGUSR1 would end the process (Go's default) when no signal trigger
	// listens for it; catch it always and say why nothing happened.
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	go func() {
		for range usr1 {
			if c := a.Config(); c.Trigger.Type != "signal" && !c.Trigger.Signal {
				log.Warn("SIGUSR1 ignored: set trigger.signal: true (or trigger.type: signal) to capture on it")
			}
		}
	}()
	if err := a.Run(ctx, reload); err != nil {
		if errors.Is(err, agent.ErrConfig) {
			log.Error("exiting with status 2: configuration not valid", "err", err)
			return 2
		}
		if errors.Is(err, capture.ErrGaveUp) {
			log.Error("exiting with status 1 so that systemd restarts the agent", "err", err)
		} else {
			log.Error("exiting with status 1", "err", err)
		}
		return 1
	}
	return 0
}
