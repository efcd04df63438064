// Package backoff computes capped exponential delays with full jitter.
//
// Full jitter (a uniformly random delay between zero and the capped
// exponential bound) spreads reconnecting clients apart, so a fleet of
// boards that lost the same server does not hammer it in lockstep when it
// comes back.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Policy describes a backoff schedule. The zero value is not useful; see
// Default.
type Policy struct {
	Initial    time.Duration // bound of the first delay
	Max        time.Duration // cap of the bound
	Multiplier float64       // growth of the bound per failure (>= 1)
}

// Default is the schedule used where configuration says nothing.
var Default = Policy{Initial: 500 * time.Millisecond, Max: 30 * time.Second, Multiplier: 2}

// Backoff tracks consecutive failures under a Policy. It is not safe for
// concurrent use.
type Backoff struct {
	Policy
	attempt int
	// Rand returns a float in [0,1); nil means math/rand/v2. Tests set it to
	// make delays deterministic.
	Rand func() float64
}

// New returns a Backoff for p.
func New(p Policy) *Backoff { return &Backoff{Policy: p} }

// Bound returns the upper bound of the next delay without consuming it.
func (b *Backoff) Bound() time.Duration {
	initial, maxd, mult := b.Initial, b.Max, b.Multiplier
	if initial <= 0 {
		initial = Default.Initial
	}
	if maxd < initial {
		maxd = initial
	}
	if mult < 1 {
		mult = 1
	}
	bound := float64(initial)
	for i := 0; i < b.attempt && bound < float64(maxd); i++ {
		bound *= mult
	}
	if bound > float64(maxd) {
		bound = float64(maxd)
	}
	return time.Duration(bound)
}

// Next returns the delay to wait before the next attempt and counts a
// failure.
func (b *Backoff) Next() time.Duration {
	bound := b.Bound()
	b.attempt++
	r := b.Rand
	if r == nil {
		r = rand.Float64
	}
	return time.Duration(r() * float64(bound))
}

// Attempts reports the failures counted since the last Reset.
func (b *Backoff) Attempts() int { return b.attempt }

// Reset forgets past failures; call it after a success.
func (b *Backoff) Reset() { b.attempt = 0 }
