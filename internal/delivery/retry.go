// Package delivery takes queued messages to their destinations. This file holds the retry
// policy shared by every transport; local.go runs local delivery (Maildir or LMTP).
package delivery

import (
	"math/rand/v2"
	"time"
)

// Retry is the schedule of attempts (RFC 5321 §4.5.4.1, MX-12): a first retry after First,
// doubling up to Max between tries, with jitter so that a burst of deferrals does not come
// back as a burst; a message older than Lifetime is given up.
type Retry struct {
	First    time.Duration // default 5 min (Postfix's minimal_backoff_time)
	Max      time.Duration // default 1 h
	Lifetime time.Duration // default 5 days
}

func (r Retry) withDefaults() Retry {
	if r.First <= 0 {
		r.First = 5 * time.Minute
	}
	if r.Max <= 0 {
		r.Max = time.Hour
	}
	if r.Max < r.First {
		r.Max = r.First
	}
	if r.Lifetime <= 0 {
		r.Lifetime = 5 * 24 * time.Hour
	}
	return r
}

// Next returns the time of the next attempt after the given number of failed attempts
// (1 for the first failure). jitter is a number in [0,1) from the caller's source of
// randomness; the delay is scaled by a factor between 0.8 and 1.2.
func (r Retry) Next(now time.Time, failures int, jitter float64) time.Time {
	r = r.withDefaults()
	d := r.First
	for i := 1; i < failures && d < r.Max; i++ {
		d *= 2
	}
	d = min(d, r.Max)
	d = time.Duration(float64(d) * (0.8 + 0.4*jitter))
	return now.Add(d)
}

// Expired reports whether a message received at received has outlived the lifetime.
func (r Retry) Expired(now, received time.Time) bool {
	return now.Sub(received) >= r.withDefaults().Lifetime
}

func defaultJitter() float64 { return rand.Float64() }
