package agent

import (
	"fmt"
	"reflect"

	"framepush/config"
)

// This file is the reload: what may change while running, and the
// rebuild of the pipeline that applies the rest.

// reload applies a new configuration without losing a frame: the queue
// stays, the pipeline is rebuilt. Sections that the queue, the listener
// and the logger were built from cannot change in place; a reload that
// touches them is refused with an explanation, and the agent keeps
// running as before. It returns an error only when neither the new nor the
// old configuration can be started again; the pipeline is then stopped
// and the agent must end.
func (a *Agent) reload() error {
	if a.opts.Reload == nil {
		a.log.Warn("reload requested but this agent was started without a way to reload; restart it instead")
		return nil
	}
	l, err := a.opts.Reload()
	if err != nil {
		a.metrics.reloadFails.Inc()
		a.log.Error("reload refused: the new configuration is invalid; still running the old one", "err", err)
		return nil
	}
	a.mu.Lock()
	old := a.cfg
	a.mu.Unlock()
	nc := l.Config
	if fixed := fixedSectionsChanged(old, nc); len(fixed) > 0 {
		a.metrics.reloadFails.Inc()
		a.log.Error("reload refused: these sections cannot change while running; restart the agent (systemctl restart framepush) to apply them", "sections", fixed)
		return nil
	}
	if unchanged(old, nc) {
		a.log.Info("reload: configuration unchanged")
		a.metrics.reloads.Inc()
		return nil
	}
	p := a.currentPipe()
	a.log.Info("reloading: stopping capture and the link; queued frames stay queued")
	a.stop(p, false)
	a.retire(p)
	np, err := a.start(nc)
	if err != nil {
		a.metrics.reloadFails.Inc()
		a.log.Error("reload failed, going back to the previous configuration", "err", err)
		np, err = a.start(old)
		if err != nil {
			// Neither works (e.g. the GPIO line was taken meanwhile).
			a.log.Error("the previous configuration cannot be started again either", "err", err)
			a.setPipe(nil)
			return fmt.Errorf("reload: %w", err)
		}
		a.setPipe(np)
		return nil
	}
	a.mu.Lock()
	a.cfg = nc
	a.mu.Unlock()
	a.setPipe(np)
	a.metrics.reloads.Inc()
	a.log.Info("reloaded", "source", nc.Source.Type, "trigger", nc.Trigger.Type, "server", nc.Server.Addresses)
	return nil
}

// retire folds the link counters of a stopped pipeline into the agent's
// and unsets the pipeline, in one step under mu, so that a snapshot sees
// either the old pipeline or the folded totals, never both or neither.
func (a *Agent) retire(p *pipeline) {
	st := p.tx.Stats()
	a.mu.Lock()
	a.retiredConnects += st.Connects
	a.retiredReconnects += st.Reconnects
	if a.pipe == p {
		a.pipe = nil
	}
	a.mu.Unlock()
}

// The reload rules. The queue (opened once, with the spool it recovered),
// the HTTP listener and the logger live as long as the process: their
// sections are fixed, and a reload that changes one is refused whole. Every
// other section (name, source, trigger, server, shutdown) belongs to the
// pipeline, which a reload rebuilds when anything in the file changed.

// fixedSectionsChanged names the fixed sections that differ between old
// and nc, in the order the refusal lists them. The sections are plain
// values compared with ==: a slice, map or pointer added to one of them
// stops this from compiling, rather than being compared by address.
func fixedSectionsChanged(old, nc config.Config) []string {
	var fixed []string
	if old.Queue != nc.Queue {
		fixed = append(fixed, "queue")
	}
	if old.HTTP != nc.HTTP {
		fixed = append(fixed, "http")
	}
	if old.Log != nc.Log {
		fixed = append(fixed, "log")
	}
	return fixed
}

// unchanged reports whether a reload would change nothing, in which case
// the pipeline is left running. The pipeline sections hold slices (server
// addresses, the command's argv), a map (camera controls) and a pointer
// (the GPIO offset), so they are compared by content, field by field,
// with reflect.DeepEqual: a field added to the configuration later is
// compared without anyone having to remember it here.
func unchanged(old, nc config.Config) bool {
	return reflect.DeepEqual(old, nc)
}
