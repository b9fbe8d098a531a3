package auth

import (
	"container/list"
	"net/netip"
	"sync"
	"time"
)

// MaxThrottleKeys is the number of client networks a Throttle tracks at most.
// At about 150 bytes an entry this bounds its memory near 10 MB.
const MaxThrottleKeys = 1 << 16

// Delays recommended by Throttle.Delay: the first failure waits
// throttleBaseDelay, each further one doubles it, up to throttleMaxDelay.
const (
	throttleBaseDelay = 250 * time.Millisecond
	throttleMaxDelay  = 5 * time.Second
)

// Throttle counts failed authentications per client network and tells the
// server when to stop trying passwords from it. A client is keyed by its IPv4
// address or by its IPv6 /64, since a single IPv6 host usually controls a
// whole /64 and could otherwise give every attempt a fresh address.
//
// A client's failures are forgotten once window passes without a new one, or
// on a successful authentication. A client with maxFailures failures is not
// Allowed until then; the server should refuse its AUTH attempts without
// checking them, and not report those refusals as failures, so that the
// client is locked out for window after its last real attempt.
//
// At most MaxThrottleKeys networks are tracked. When a new one must be added
// to a full table, the one whose last failure is oldest is forgotten. An
// attacker with more networks than that can therefore cycle through them to
// shed its own record; the table is large enough to make that expensive.
//
// A Throttle is safe for concurrent use.
type Throttle struct {
	maxFailures int
	window      time.Duration
	now         func() time.Time
	maxKeys     int

	mu      sync.Mutex
	entries map[netip.Prefix]*list.Element
	// byAge holds *throttleEntry, most recent failure at the front.
	byAge *list.List
}

type throttleEntry struct {
	key      netip.Prefix
	failures int
	last     time.Time
}

// NewThrottle returns a Throttle allowing maxFailures failures per client
// network within window. A maxFailures below 1 disables blocking; Delay still
// recommends delays. A nil now means time.Now.
func NewThrottle(maxFailures int, window time.Duration, now func() time.Time) *Throttle {
	if now == nil {
		now = time.Now
	}
	return &Throttle{
		maxFailures: maxFailures,
		window:      window,
		now:         now,
		maxKeys:     MaxThrottleKeys,
		entries:     make(map[netip.Prefix]*list.Element),
		byAge:       list.New(),
	}
}

// Allowed reports whether the client at ip may attempt to authenticate.
func (t *Throttle) Allowed(ip netip.Addr) bool {
	if t.maxFailures < 1 {
		return true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.lookup(throttleKey(ip))
	return e == nil || e.failures < t.maxFailures
}

// Failure records a failed authentication by the client at ip.
func (t *Throttle) Failure(ip netip.Addr) {
	key := throttleKey(ip)
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.lookup(key)
	if e == nil {
		for len(t.entries) >= t.maxKeys {
			t.remove(t.byAge.Back())
		}
		e = &throttleEntry{key: key}
		t.entries[key] = t.byAge.PushFront(e)
	} else {
		t.byAge.MoveToFront(t.entries[key])
	}
	e.failures++
	e.last = t.now()
}

// Success forgets the failures of the client at ip.
func (t *Throttle) Success(ip netip.Addr) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if el, ok := t.entries[throttleKey(ip)]; ok {
		t.remove(el)
	}
}

// Delay recommends how long the server should wait before answering a failed
// authentication from ip, once the failure has been recorded: nothing for a
// client without failures, then 250ms doubling with each failure up to 5s.
// Slowing answers slows password guessing on a connection without hurting a
// user who mistyped once.
func (t *Throttle) Delay(ip netip.Addr) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.lookup(throttleKey(ip))
	if e == nil {
		return 0
	}
	d := throttleBaseDelay
	for i := 1; i < e.failures && d < throttleMaxDelay; i++ {
		d *= 2
	}
	return min(d, throttleMaxDelay)
}

// lookup returns the live entry for key, dropping it if it has expired.
// t.mu is held.
func (t *Throttle) lookup(key netip.Prefix) *throttleEntry {
	el, ok := t.entries[key]
	if !ok {
		return nil
	}
	e := el.Value.(*throttleEntry)
	if t.now().Sub(e.last) >= t.window {
		t.remove(el)
		return nil
	}
	return e
}

func (t *Throttle) remove(el *list.Element) {
	delete(t.entries, el.Value.(*throttleEntry).key)
	t.byAge.Remove(el)
}

// throttleKey maps an address to the network it is throttled by: the address
// itself for IPv4 (including IPv4-mapped IPv6), its /64 for IPv6.
func throttleKey(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap().WithZone("")
	bits := 64
	if ip.Is4() {
		bits = 32
	}
	p, err := ip.Prefix(bits)
	if err != nil {
		return netip.Prefix{} // the invalid address: all such clients share one key
	}
	return p
}
