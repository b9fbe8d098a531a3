package policylist

import (
	"sync/atomic"
	"time"
)

// Current holds the list in force. Lookups on it never wait, and a reload (after
// Install, or when the operator's file changes) replaces the list for lookups that
// start afterwards. The zero value holds no list.
type Current struct {
	p atomic.Pointer[List]
}

// Load returns the list in force, nil if none.
func (c *Current) Load() *List { return c.p.Load() }

// Store makes l the list in force; nil removes it.
func (c *Current) Store(l *List) { c.p.Store(l) }

// Lookup is Load().Lookup: the entry for domain in the list in force (see List.Lookup).
func (c *Current) Lookup(domain string, now time.Time) (Entry, bool, error) {
	return c.p.Load().Lookup(domain, now)
}
