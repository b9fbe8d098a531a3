package dns

import (
	"container/list"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
)

// cacheKey identifies one question. name is fully qualified and lower case.
type cacheKey struct {
	name  string
	qtype uint16
}

type cacheEntry struct {
	key     cacheKey
	resp    *mdns.Msg // never modified once stored
	v       Validation
	expires time.Time
}

// cache holds replies by question for as long as their TTL allows, evicting the least
// recently used entry when full. It stores whole replies rather than finished results so
// that each link of a CNAME chain expires on its own TTL.
type cache struct {
	mu      sync.Mutex
	max     int
	entries map[cacheKey]*list.Element
	lru     list.List // front: most recently used; values are *cacheEntry
}

func newCache(max int) *cache {
	return &cache{max: max, entries: make(map[cacheKey]*list.Element)}
}

// get returns the reply cached for k if it has not expired at now.
func (c *cache) get(k cacheKey, now time.Time) (*mdns.Msg, Validation, bool) {
	if c == nil {
		return nil, Validation{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[k]
	if !ok {
		return nil, Validation{}, false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.lru.Remove(el)
		delete(c.entries, k)
		return nil, Validation{}, false
	}
	c.lru.MoveToFront(el)
	return e.resp, e.v, true
}

// put stores resp for k until expires.
func (c *cache) put(k cacheKey, resp *mdns.Msg, v Validation, expires time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[k]; ok {
		el.Value = &cacheEntry{key: k, resp: resp, v: v, expires: expires}
		c.lru.MoveToFront(el)
		return
	}
	for c.lru.Len() >= c.max {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.entries, old.Value.(*cacheEntry).key)
	}
	c.entries[k] = c.lru.PushFront(&cacheEntry{key: k, resp: resp, v: v, expires: expires})
}

// len returns the number of entries, expired ones included.
func (c *cache) len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
