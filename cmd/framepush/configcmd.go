package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"framepush/config"
)

func runConfig(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("framepush config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sets multiFlag
	fs.Var(&sets, "set", "override a setting, key.path=value (repeatable)")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage:
  framepush config check [--set key=value]... [FILE]
      Load FILE (default: none, i.e. the built-in defaults), apply FRAMEPUSH_*
      variables and --set overrides, validate, and print the effective
      configuration. Exit 0 when valid, 1 with every problem listed otherwise.
      The rules are the ones "framepush run" applies (it exits 2 for the same
      problems), so a file that passes starts. FILE is at most 1 MiB.
  framepush config example
      Print the commented example configuration.

Examples:
  framepush config check /etc/framepush/framepush.yaml
  FRAMEPUSH_TRIGGER_TYPE=gpio framepush config check --set trigger.gpio.line=GPIO17
  framepush config example > /etc/framepush/framepush.yaml
`)
	}
	if len(args) == 0 {
		fs.Usage()
		return 2
	}
	sub := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	switch sub {
	case "example":
		fmt.Fprint(stdout, config.Example)
		return 0
	case "check":
		file := ""
		if fs.NArg() > 1 {
			fmt.Fprintln(stderr, "framepush config check: at most one FILE")
			return 2
		}
		if fs.NArg() == 1 {
			file = fs.Arg(0)
		}
		l, err := config.Load(file, os.Environ(), sets)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		src := "built-in defaults"
		if file != "" {
			src = file
		}
		fmt.Fprintf(stdout, "# %s: valid. Effective configuration:\n%s", src, l.YAML())
		return 0
	case "-h", "--help", "help":
		fs.Usage()
		return 0
	}
	fmt.Fprintf(stderr, "framepush config: unknown subcommand %q (want check or example)\n", sub)
	return 2
}

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return fmt.Sprint(*m) }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
