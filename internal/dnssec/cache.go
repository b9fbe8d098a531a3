package dnssec

import (
	"container/list"
	"context"
	"sync"
	"time"
)

const (
	// maxCacheTTL caps how long any result of the chain of trust is kept, whatever the
	// TTLs say; Unbound's cache-max-ttl has the same default.
	maxCacheTTL = 24 * time.Hour
	// bogusTTL is how long a validation failure of a zone is remembered, so that a
	// broken zone does not cost a full chain walk on every lookup; Unbound's
	// val-bogus-ttl has the same default. Failures to fetch are not remembered at all.
	bogusTTL = 60 * time.Second
)

// nodeKind is what the chain of trust proved about one name.
type nodeKind uint8

const (
	// nodeZone: the name is the apex of a secure zone, whose keys are known.
	nodeZone nodeKind = iota + 1
	// nodeNotCut: the name lies inside its parent's zone; there is no delegation.
	nodeNotCut
	// nodeNXDomain: the name does not exist in its parent's zone, so neither does any
	// zone below it.
	nodeNXDomain
	// nodeInsecure: the name is an insecure delegation, or everything at and below it
	// is insecure for another reason (unsupported algorithms, NSEC3 opt-out).
	nodeInsecure
	// nodeBogus: validation failed.
	nodeBogus
)

// node is the cached result of one step of the chain of trust.
type node struct {
	kind    nodeKind
	zone    *zone   // for nodeZone
	v       verdict // for nodeInsecure and nodeBogus
	expires time.Time
	// sigExpires is the earliest expiration of the signatures the step rests on, its
	// own proof's and those of the chain above it; zero if none.
	sigExpires time.Time
	// transient marks a failure that proves nothing about the zone (a failure to
	// fetch, a budget of this reply spent): it is not cached.
	transient bool
}

// nodeKey names a node. Nodes of trust anchors are kept apart from the DS walk's.
type nodeKey struct {
	name   string
	anchor bool
}

type cacheEntry struct {
	key nodeKey
	n   node
}

// keyCache holds the nodes of the chain of trust, least recently used evicted first, and
// the fetches in progress so that concurrent lookups of the same zone share one.
type keyCache struct {
	mu       sync.Mutex
	max      int // <= 0 disables caching
	entries  map[nodeKey]*list.Element
	lru      list.List // front: most recently used; values are *cacheEntry
	inflight map[nodeKey]*flight
}

// flight is a node being computed by one Validate call; others wait for it.
type flight struct {
	done chan struct{}
	n    node
}

func newKeyCache(max int) *keyCache {
	return &keyCache{max: max, entries: make(map[nodeKey]*list.Element), inflight: make(map[nodeKey]*flight)}
}

// getLocked returns the node cached for k if it has not expired at now.
func (kc *keyCache) getLocked(k nodeKey, now time.Time) (node, bool) {
	el, ok := kc.entries[k]
	if !ok {
		return node{}, false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.n.expires) {
		kc.lru.Remove(el)
		delete(kc.entries, k)
		return node{}, false
	}
	kc.lru.MoveToFront(el)
	return e.n, true
}

// putLocked stores n for k, with its lifetime capped.
func (kc *keyCache) putLocked(k nodeKey, n node, now time.Time) {
	if kc.max <= 0 || n.transient {
		return
	}
	limit := maxCacheTTL
	if n.kind == nodeBogus {
		limit = bogusTTL
	}
	n.expires = earliest(n.expires, now.Add(limit))
	if !now.Before(n.expires) {
		return
	}
	if el, ok := kc.entries[k]; ok {
		el.Value = &cacheEntry{key: k, n: n}
		kc.lru.MoveToFront(el)
		return
	}
	for kc.lru.Len() >= kc.max {
		old := kc.lru.Back()
		kc.lru.Remove(old)
		delete(kc.entries, old.Value.(*cacheEntry).key)
	}
	kc.entries[k] = kc.lru.PushFront(&cacheEntry{key: k, n: n})
}

// len returns the number of cached nodes, expired ones included.
func (kc *keyCache) len() int {
	kc.mu.Lock()
	defer kc.mu.Unlock()
	return kc.lru.Len()
}

// node returns the node for k: from the cache, from a concurrent call computing it, or
// from compute, whose result is then cached.
func (c *call) node(ctx context.Context, k nodeKey, compute func() node) node {
	kc := c.v.cache
	for attempt := 0; ; attempt++ {
		kc.mu.Lock()
		if n, ok := kc.getLocked(k, c.now); ok {
			kc.mu.Unlock()
			return n
		}
		f, busy := kc.inflight[k]
		if busy && attempt == 0 {
			kc.mu.Unlock()
			select {
			case <-f.done:
				if !f.n.transient {
					return f.n
				}
				continue // the other call could not fetch; try once ourselves
			case <-ctx.Done():
				return node{kind: nodeBogus, transient: true,
					v: bogus(edeNetworkError, "waiting for the keys of %s: %v", k.name, ctx.Err())}
			}
		}
		var mine *flight
		if !busy {
			mine = &flight{done: make(chan struct{})}
			kc.inflight[k] = mine
		}
		kc.mu.Unlock()
		return c.settle(k, mine, compute)
	}
}

// settle computes a node, caches it and hands it to the calls waiting for it. Waiters
// are released even if compute panics, with a failure that is not cached.
func (c *call) settle(k nodeKey, mine *flight, compute func() node) (n node) {
	kc := c.v.cache
	finished := false
	defer func() {
		if !finished {
			n = node{kind: nodeBogus, transient: true, v: bogus(edeDNSSECBogus, "validating %s failed", k.name)}
		}
		kc.mu.Lock()
		if finished {
			kc.putLocked(k, n, c.now)
		}
		if mine != nil {
			delete(kc.inflight, k)
		}
		kc.mu.Unlock()
		if mine != nil {
			mine.n = n
			close(mine.done)
		}
	}()
	n = compute()
	if n.kind == nodeBogus && c.exhausted() {
		// The failure may be the budget's, spent by whatever else the reply carried:
		// caching it would let one hostile reply fail another zone for bogusTTL.
		n.transient = true
	}
	finished = true
	return n
}
