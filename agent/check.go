package agent

import (
	"errors"
	"fmt"

	"framepush/config"
	"framepush/internal/logging"
	"framepush/sender"
)

// ErrConfig marks an error that says the configuration is wrong, not the
// world: framepush run exits 2 for it (like a file config.Load refuses),
// not 1. config.Validate is meant to refuse all of these first, with the
// file and line; this is the backstop should a constructor ever be
// stricter than the validation.
var ErrConfig = errors.New("configuration not valid")

// configError keeps the constructor's message as is and adds ErrConfig.
type configError struct{ err error }

func (e configError) Error() string   { return e.err.Error() }
func (e configError) Unwrap() []error { return []error{ErrConfig, e.err} }

// CheckConfig runs the pipeline constructors' own checks of cfg, opening
// nothing but the TLS files: the queue's options, the sender's (addresses,
// mode, TLS files), the source's (the test pattern's sizes). Errors wrap
// ErrConfig. New calls it before it opens anything, so a wrong setting is
// reported once, at start, as a configuration error.
func CheckConfig(cfg config.Config) error {
	var errs []error
	if err := QueueOptions(cfg.Queue, logging.Discard).Validate(); err != nil {
		errs = append(errs, err)
	}
	if so, err := SenderOptions(cfg.Server, cfg.Name, logging.Discard); err != nil {
		errs = append(errs, err)
	} else if _, err := sender.New(so); err != nil { // New only checks and copies: no connection
		errs = append(errs, err)
	}
	if src, err := NewSource(cfg.Source, logging.Discard); err != nil {
		errs = append(errs, fmt.Errorf("source: %w", err))
	} else {
		src.Close() // lazily opened: nothing was opened but the test pattern's probe
	}
	if err := errors.Join(errs...); err != nil {
		return configError{err}
	}
	return nil
}
